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

{{- define "kedge.selectorLabels" -}}
app.kubernetes.io/name: kedge
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "kedge.labels" -}}
{{ include "kedge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kedge
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
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

{{/* The Redis URL without the password, which comes from a Secret through $(KEDGE_REDIS_PASSWORD). */}}
{{- define "kedge.redisUrl" -}}
{{- if .Values.redis.url -}}
{{- .Values.redis.url -}}
{{- else -}}
{{- $host := required "redis.host or redis.url is required when redis.enabled is true" .Values.redis.host -}}
{{- if .Values.redis.passwordSecret.name -}}
{{- printf "redis://:$(KEDGE_REDIS_PASSWORD)@%s:%d/%d" $host (int .Values.redis.port) (int .Values.redis.db) -}}
{{- else -}}
{{- printf "redis://%s:%d/%d" $host (int .Values.redis.port) (int .Values.redis.db) -}}
{{- end -}}
{{- end -}}
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
# Module pods: created per targeted device, deleted when the module goes away.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods/status"]
  verbs: ["patch"]
# Device key Secrets (generated, revoked on delete), env and image pull Secrets (read).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "delete"]
# ConfigMaps referenced by module env.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}
