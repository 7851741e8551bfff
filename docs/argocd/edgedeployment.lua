-- Argo CD health check for kedge.io/EdgeDeployment (resource.customizations.health.kedge.io_EdgeDeployment).
-- Reads the global `obj`; returns {status, message}. Lua 5.1 compatible (Argo CD runs gopher-lua).
-- A module lost to a higher-priority deployment is layering working as designed: it is named in
-- the message but does not make the deployment Degraded.
-- Rollouts (status.rollout.phase): Progressing while devices update; Degraded when a rollout
-- halted or is rolling back; Healthy again once every device runs the last good spec, with a
-- message that says the current spec was rolled back.
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
local conflict = condition(status, "Conflict")
local suffix = ""
if conflict ~= nil and conflict.status == "True" then
  suffix = "; " .. (conflict.message or "module-name conflicts")
end
local rollout = status.rollout or {}
local failing = (status.reportedFailedCount or 0) > 0
if rollout.phase == "Halted" or rollout.phase == "RollingBack" then
  hs.status = "Degraded"
  hs.message = "rollout " .. string.lower(rollout.phase) .. ": " .. (rollout.message or "") .. suffix
elseif rollout.phase == "RolledBack" and not failing then
  hs.status = "Healthy"
  hs.message = (rollout.message or "rolled back to the last good spec") .. suffix
elseif rollout.phase == "Progressing" then
  hs.message = (rollout.message or (ready and ready.message) or "rolling out") .. suffix
elseif failing then
  hs.status = "Degraded"
  hs.message = (ready and ready.message or (tostring(status.reportedFailedCount) .. " devices failing")) .. suffix
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = (ready.message or "every targeted device runs every module") .. suffix
elseif ready ~= nil then
  hs.message = (ready.message or ready.reason or "rolling out") .. suffix
end
return hs
