{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "meshcast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; every object's name starts with it. Kept to 50 characters so that
the longest suffix ("-redis-headless") still fits a Service's 63. */}}
{{- define "meshcast.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "meshcast.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "meshcast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "meshcast.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels (dict "ctx" . "component" NAME) ---------------------------------------------- */}}

{{- define "meshcast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshcast.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "meshcast.labels" -}}
helm.sh/chart: {{ include "meshcast.chart" .ctx }}
{{ include "meshcast.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: meshcast
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* An object's metadata: name, namespace, labels. (dict "ctx" . "component" C "name" N) */}}
{{- define "meshcast.metadata" -}}
name: {{ .name }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "meshcast.labels" . | nindent 2 }}
{{- end }}

{{/* checkov's skips on an object's metadata (a list of "CKV_ID=reason"), as annotations
checkov.io/skip1, skip2, ... */}}
{{- define "meshcast.checkovSkips" -}}
{{- range $i, $skip := . }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end }}

{{/* Images ------------------------------------------------------------------------------ */}}

{{/* repository@digest, else repository:tag (the chart's appVersion when tag is empty).
(dict "image" .Values.X.image "ctx" .) */}}
{{- define "meshcast.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/* checkov's skips that an image not pinned by digest needs, as a YAML list: CKV_K8S_43
(by digest) with pinReason, and CKV_K8S_15 (pull policy Always) with pullReason, if any, where
the policy is not Always. (dict "image" IMAGE "pinReason" R "pullReason" R) */}}
{{- define "meshcast.imageSkips" -}}
{{- if not .image.digest }}
- {{ printf "CKV_K8S_43=%s" .pinReason | quote }}
{{- if and .pullReason (ne .image.pullPolicy "Always") }}
- {{ printf "CKV_K8S_15=%s" .pullReason | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Security ---------------------------------------------------------------------------- */}}

{{- define "meshcast.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "meshcast.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Redis ------------------------------------------------------------------------------- */}}

{{- define "meshcast.redisName" -}}
{{- printf "%s-redis" (include "meshcast.fullname" .) }}
{{- end }}

{{/* The Secret that holds MESHCAST_REDIS_URL, and its key. */}}
{{- define "meshcast.redisUrlSecretName" -}}
{{- if and (not .Values.redis.enabled) .Values.redis.existingSecret.name }}
{{- .Values.redis.existingSecret.name }}
{{- else }}
{{- include "meshcast.redisName" . }}
{{- end }}
{{- end }}

{{- define "meshcast.redisUrlSecretKey" -}}
{{- if and (not .Values.redis.enabled) .Values.redis.existingSecret.name }}
{{- .Values.redis.existingSecret.key }}
{{- else -}}
url
{{- end }}
{{- end }}

{{/* The Redis URL the chart writes into its Secret (not used with redis.existingSecret). */}}
{{- define "meshcast.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- $auth := ternary (printf ":%s@" .Values.redis.auth.password) "" (ne .Values.redis.auth.password "") }}
{{- printf "redis://%s%s:6379/0" $auth (include "meshcast.redisName" .) }}
{{- else }}
{{- required "redis.enabled is false: set redis.externalUrl or redis.existingSecret.name" .Values.redis.externalUrl }}
{{- end }}
{{- end }}

{{/* The queue's Redis list, which KEDA watches: the store's prefix, Celery's namespace under
it (service/queue.py), the queue's name. */}}
{{- define "meshcast.queueListName" -}}
{{- printf "%scelery:meshcast.jobs" .Values.settings.store.prefix }}
{{- end }}

{{/* Bundle ------------------------------------------------------------------------------ */}}

{{- define "meshcast.bundleDir" -}}
{{- if eq .Values.bundle.source "pvc" }}
{{- trimSuffix "/" (printf "/bundles/%s" .Values.bundle.path) }}
{{- else -}}
/bundles
{{- end }}
{{- end }}

{{/* The init container that fetches the bundle (bundle.source url) into the pod's emptyDir,
with the component's own image. (dict "ctx" . "image" IMAGE) */}}
{{- define "meshcast.fetchBundleContainer" -}}
{{- $v := .ctx.Values }}
- name: fetch-bundle
  image: {{ include "meshcast.image" (dict "image" .image "ctx" .ctx) }}
  imagePullPolicy: {{ .image.pullPolicy }}
  command: [meshcast]
  {{- if $v.bundle.urlSecret.name }}
  args: [fetch-bundle, "$(MESHCAST_BUNDLE_URL)", /bundles, --sha256, {{ $v.bundle.sha256 | quote }}]
  env:
    - name: MESHCAST_BUNDLE_URL
      valueFrom:
        secretKeyRef:
          name: {{ $v.bundle.urlSecret.name }}
          key: {{ $v.bundle.urlSecret.key }}
  {{- else }}
  args: [fetch-bundle, {{ required "bundle.source is url: set bundle.url or bundle.urlSecret.name" $v.bundle.url | quote }}, /bundles, --sha256, {{ $v.bundle.sha256 | quote }}]
  {{- end }}
  securityContext:
    {{- include "meshcast.containerSecurityContext" .ctx | nindent 4 }}
  resources:
    {{- toYaml $v.bundle.fetchResources | nindent 4 }}
  volumeMounts:
    - {name: bundle, mountPath: /bundles}
    - {name: tmp, mountPath: /tmp}
{{- end }}

{{/* Pods -------------------------------------------------------------------------------- */}}

{{/* The environment both meshcast containers share. */}}
{{- define "meshcast.serviceEnv" -}}
- name: MESHCAST_CONFIG
  value: /etc/meshcast/config/config.yaml
- name: MESHCAST_BUNDLE
  value: {{ include "meshcast.bundleDir" . }}
- name: MESHCAST_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "meshcast.redisUrlSecretName" . }}
      key: {{ include "meshcast.redisUrlSecretKey" . }}
{{- end }}

{{- define "meshcast.serviceVolumeMounts" -}}
- {name: config, mountPath: /etc/meshcast/config, readOnly: true}
- {name: bundle, mountPath: /bundles, readOnly: true}
- {name: tmp, mountPath: /tmp}
{{- end }}

{{/* The volumes both meshcast pods share; (dict "ctx" . "tmpSizeLimit" SIZE). */}}
{{- define "meshcast.serviceVolumes" -}}
{{- $v := .ctx.Values }}
- name: config
  configMap:
    name: {{ include "meshcast.fullname" .ctx }}
- name: bundle
  {{- if eq $v.bundle.source "pvc" }}
  persistentVolumeClaim:
    claimName: {{ $v.bundle.existingClaim }}
    readOnly: true
  {{- else }}
  emptyDir:
    sizeLimit: {{ $v.bundle.sizeLimit }}
  {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSizeLimit }}
{{- end }}

{{/* The API keys file, which only the gateway reads (gateway.api_keys_file in config.yaml). */}}
{{- define "meshcast.apiKeysVolumeMount" -}}
- {name: api-keys, mountPath: /etc/meshcast/api-keys, readOnly: true}
{{- end }}

{{- define "meshcast.apiKeysVolume" -}}
- name: api-keys
  secret:
    secretName: {{ include "meshcast.apiKeysSecretName" . }}
    items:
      - {key: api-keys.yaml, path: api-keys.yaml}
{{- end }}

{{- define "meshcast.apiKeysSecretName" -}}
{{- default (printf "%s-api-keys" (include "meshcast.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{/* Pod placement and pull secrets; (dict "ctx" . "nodeSelector" N "tolerations" T "affinity"
A "topologySpreadConstraints" S). */}}
{{- define "meshcast.podPlacement" -}}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
