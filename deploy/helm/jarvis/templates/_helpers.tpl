{{/* The chart's name, and the release's full name (cut to 63 characters: a DNS label). */}}
{{- define "jarvis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jarvis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "jarvis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jarvis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jarvis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "jarvis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The chart's own Secret: the keys and URLs given as values (not those in an existing Secret). */}}
{{- define "jarvis.secretName" -}}
{{- include "jarvis.fullname" . -}}
{{- end -}}

{{/* True ("1") when the chart's Secret has something to hold. */}}
{{- define "jarvis.hasSecret" -}}
{{- if or (and .Values.apiKeys.value (not .Values.apiKeys.existingSecret)) (and .Values.redis.url (not .Values.redis.existingSecret)) (and .Values.database.url (not .Values.database.existingSecret)) -}}1{{- end -}}
{{- end -}}

{{/*
One secret environment variable: from the Secret named in existingSecret, else from the chart's Secret when a
value is given, else nothing. Called with (dict "name" "REDIS_URL" "v" .Values.redis "root" $).
*/}}
{{- define "jarvis.secretEnv" -}}
{{- if .v.existingSecret -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .v.existingSecret }}
      key: {{ .v.existingSecretKey }}
{{- else if or .v.value .v.url -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "jarvis.secretName" .root }}
      key: {{ .name }}
{{- end -}}
{{- end -}}

{{/* What the chart refuses to render: a setup Jarvis would refuse to start with, or one that loses streams. */}}
{{- define "jarvis.validate" -}}
{{- if not (or .Values.apiKeys.value .Values.apiKeys.existingSecret (hasKey .Values.config "JARVIS_KEYS_FILE") (hasKey .Values.config "JARVIS_ALLOW_INSECURE")) -}}
{{- fail "apiKeys.value or apiKeys.existingSecret is required: Jarvis refuses to serve a pod's address without API keys (JARVIS_API_KEYS)" -}}
{{- end -}}
{{- if and (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) (not (or .Values.redis.url .Values.redis.existingSecret (hasKey .Values.config "REDIS_SENTINELS") (hasKey .Values.config "REDIS_CLUSTER_NODES"))) -}}
{{- fail "redis.url or redis.existingSecret (or REDIS_SENTINELS or REDIS_CLUSTER_NODES in config) is required with more than one replica: replicas share sessions and events through Redis" -}}
{{- end -}}
{{- $graceMs := int (default "10000" (index .Values.config "JARVIS_SHUTDOWN_GRACE_MS")) -}}
{{- if le (mul (int .Values.terminationGracePeriodSeconds) 1000) (add (mul (int .Values.preStopSleepSeconds) 1000) $graceMs 5000) -}}
{{- fail "terminationGracePeriodSeconds must be more than preStopSleepSeconds + JARVIS_SHUTDOWN_GRACE_MS + 5 s (the close): running streams would be killed before their grace ends" -}}
{{- end -}}
{{- end -}}
