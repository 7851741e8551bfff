{{/* The name every object carries: the release name, or <release>-kedge. */}}
{{- define "kedge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "kedge" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-kedge" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "gateway"). */}}
{{- define "kedge.componentSelectorLabels" -}}
app.kubernetes.io/name: kedge
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kedge.componentLabels" -}}
{{ include "kedge.componentSelectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kedge
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{/* The controller's selector labels and labels (also on the objects shared by the release). */}}
{{- define "kedge.selectorLabels" -}}
{{ include "kedge.componentSelectorLabels" (dict "ctx" . "component" "controller") }}
{{- end -}}

{{- define "kedge.labels" -}}
{{ include "kedge.componentLabels" (dict "ctx" . "component" "controller") }}
{{- end -}}

{{- define "kedge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kedge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kedge.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Leader election: the explicit value, else on when there is more than one replica. */}}
{{- define "kedge.leaderElect" -}}
{{- if kindIs "bool" .Values.leaderElection.enabled -}}
{{- .Values.leaderElection.enabled -}}
{{- else -}}
{{- gt (int .Values.replicaCount) 1 -}}
{{- end -}}
{{- end -}}

{{/* The gateway's ServiceAccount: it needs no Kubernetes permissions and gets no token. */}}
{{- define "kedge.gatewayServiceAccountName" -}}
{{- printf "%s-gateway" (include "kedge.fullname" .) -}}
{{- end -}}

{{/* The bundled NATS cluster: the explicit value, else on when no nats.url is given. */}}
{{- define "kedge.natsBundled" -}}
{{- if kindIs "bool" .Values.nats.bundled.enabled -}}
{{- .Values.nats.bundled.enabled -}}
{{- else -}}
{{- empty .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "kedge.natsName" -}}
{{- printf "%s-nats" (include "kedge.fullname" .) -}}
{{- end -}}

{{/* KEDGE_NATS_URL: the bundled cluster's client Service, or nats.url. */}}
{{- define "kedge.natsUrl" -}}
{{- if eq (include "kedge.natsBundled" .) "true" -}}
{{- printf "nats://%s.%s.svc:4222" (include "kedge.natsName" .) .Release.Namespace -}}
{{- else -}}
{{- .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{/* JetStream replicas of kedge's streams and buckets (KEDGE_STREAM_REPLICAS). */}}
{{- define "kedge.streamReplicas" -}}
{{- if not (kindIs "invalid" .Values.nats.streamReplicas) -}}
{{- int .Values.nats.streamReplicas -}}
{{- else if eq (include "kedge.natsBundled" .) "true" -}}
3
{{- else -}}
1
{{- end -}}
{{- end -}}

{{/* How the controller and the gateways reach NATS: KEDGE_NATS_* variables. */}}
{{- define "kedge.natsEnv" -}}
- name: KEDGE_NATS_URL
  value: {{ include "kedge.natsUrl" . | quote }}
{{- with .Values.nats.credentialsSecret.name }}
- name: KEDGE_NATS_CREDS_FILE
  value: {{ printf "/etc/kedge/nats-creds/%s" $.Values.nats.credentialsSecret.key | quote }}
{{- end }}
{{- with .Values.nats.userSecret.name }}
- name: KEDGE_NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.nats.userSecret.userKey }}
- name: KEDGE_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.nats.userSecret.passwordKey }}
{{- end }}
{{- with .Values.nats.caSecret.name }}
- name: KEDGE_NATS_CA_FILE
  value: {{ printf "/etc/kedge/nats-ca/%s" $.Values.nats.caSecret.key | quote }}
{{- end }}
{{- end -}}

{{- define "kedge.natsVolumeMounts" -}}
{{- if .Values.nats.credentialsSecret.name }}
- name: nats-creds
  mountPath: /etc/kedge/nats-creds
  readOnly: true
{{- end }}
{{- if .Values.nats.caSecret.name }}
- name: nats-ca
  mountPath: /etc/kedge/nats-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "kedge.natsVolumes" -}}
{{- with .Values.nats.credentialsSecret.name }}
- name: nats-creds
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .Values.nats.caSecret.name }}
- name: nats-ca
  secret:
    secretName: {{ . }}
{{- end }}
{{- end -}}

{{/* Names devices use to reach the gateways: the gateway Service's DNS names and gateway.hostnames. */}}
{{- define "kedge.gatewayHostnames" -}}
{{- $svc := printf "%s-gateway.%s.svc" (include "kedge.fullname" .) .Release.Namespace -}}
{{- join "," (concat (list $svc (printf "%s.cluster.local" $svc)) .Values.gateway.hostnames) -}}
{{- end -}}

{{/* Rules on namespaced resources: cluster-wide (ClusterRole) or per watched namespace (Role). */}}
{{- define "kedge.namespacedRules" -}}
# EdgeDevices: reconcile, add and release the kedge.io/device finalizer, write status.
- apiGroups: ["kedge.io"]
  resources: ["edgedevices"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["kedge.io"]
  resources: ["edgedeployments", "routes"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["kedge.io"]
  resources: ["edgedevices/status", "edgedeployments/status", "routes/status"]
  verbs: ["patch"]
# Module pods carry a blocking owner reference to their EdgeDeployment.
- apiGroups: ["kedge.io"]
  resources: ["edgedeployments/finalizers"]
  verbs: ["update"]
# Module pods: created per targeted device, deleted when the module goes away, and patched
# (the desired-properties annotation only) when a module's desiredProperties change.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
- apiGroups: [""]
  resources: ["pods/status"]
  verbs: ["patch"]
# The last good module spec of each EdgeDeployment, kept for rollbacks (docs/adr/0028).
- apiGroups: ["apps"]
  resources: ["controllerrevisions"]
  verbs: ["get", "list", "create", "patch", "delete"]
# Device key Secrets (generated, revoked on delete, watched by label kedge.io/device-key-for so
# an edit takes effect at once), env and image pull Secrets (read).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "delete"]
# ConfigMaps referenced by module env.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
# Events, and their count when one repeats (aggregated as the kubelet does).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* nats-server configuration of the bundled cluster; $SERVER_NAME and $NATS_* come from the pod env. */}}
{{- define "kedge.natsServerConfig" -}}
{{- $name := include "kedge.natsName" . -}}
{{- $headless := printf "%s-headless.%s.svc" $name .Release.Namespace -}}
server_name: $SERVER_NAME
listen: 0.0.0.0:4222
http: 0.0.0.0:8222
jetstream {
  store_dir: /data
  max_file_store: {{ .Values.nats.bundled.maxFileStore }}
  max_memory_store: {{ .Values.nats.bundled.maxMemoryStore }}
}
cluster {
  name: {{ $name }}
  listen: 0.0.0.0:6222
  routes: [
  {{- range $i := until (int .Values.nats.bundled.replicas) }}
    nats://{{ $name }}-{{ $i }}.{{ $headless }}:6222
  {{- end }}
  ]
}
{{- if .Values.nats.userSecret.name }}
authorization {
  user: $NATS_USER
  password: $NATS_PASSWORD
}
{{- end }}
{{- end -}}
