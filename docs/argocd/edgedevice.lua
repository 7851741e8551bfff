-- Argo CD health check for kedge.io/EdgeDevice (resource.customizations.health.kedge.io_EdgeDevice).
-- Reads the global `obj`; returns {status, message}. Lua 5.1 compatible (Argo CD runs gopher-lua).
local hs = { status = "Progressing", message = "waiting for the kedge controller" }

local function condition(status, kind)
  if status == nil or status.conditions == nil then return nil end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then return c end
  end
  return nil
end

local status = obj.status
if status == nil then return hs end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "the controller has not yet observed generation " .. tostring(generation)
  return hs
end

local ready = condition(status, "Ready")
local modules = condition(status, "ModulesHealthy")
if status.phase == "Pending" then
  hs.message = "waiting for the device to connect (kedge node has never connected)"
elseif status.phase == "Disconnected" then
  hs.status = "Degraded"
  hs.message = "device disconnected" .. (status.lastSeen and (", last seen " .. status.lastSeen) or "")
elseif modules ~= nil and modules.status == "False" then
  hs.status = "Degraded"
  hs.message = modules.message or "a module reports a failure"
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "connected, modules healthy"
elseif ready ~= nil then
  hs.message = ready.message or ready.reason or "not ready"
end
return hs
