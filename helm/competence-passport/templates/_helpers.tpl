{{/* Names, labels and the pieces the Deployment and the migration Job share. */}}

{{- define "competence-passport.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "competence-passport.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "competence-passport.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "server"). */}}
{{- define "competence-passport.selectorLabels" -}}
app.kubernetes.io/name: {{ include "competence-passport.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "competence-passport.labels" -}}
helm.sh/chart: {{ include "competence-passport.chart" .ctx }}
{{ include "competence-passport.selectorLabels" . }}
app.kubernetes.io/part-of: competence-passport
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{- define "competence-passport.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "competence-passport.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "competence-passport.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "competence-passport.signingKeysDir" -}}
/var/run/secrets/passport/signing
{{- end }}

{{/*
The non-secret settings as a YAML map of variable name to string. The ConfigMap holds them for
the pods; the migration Job gets them inline, because a pre-install hook runs before the
release's ConfigMap exists.
*/}}
{{- define "competence-passport.configData" -}}
{{- $c := .Values.config -}}
PASSPORT_ENVIRONMENT: {{ $c.environment | quote }}
PASSPORT_DATABASE_ROLE: {{ $c.databaseRole | quote }}
PASSPORT_WORKERS: {{ $c.workers | toString | quote }}
PASSPORT_DB_POOL_SIZE: {{ $c.dbPoolSize | toString | quote }}
PASSPORT_DB_MAX_OVERFLOW: {{ $c.dbMaxOverflow | toString | quote }}
{{- /* In-flight requests finish within the pod's grace period, after the preStop pause. */}}
PASSPORT_SHUTDOWN_GRACE_SECONDS: {{ max 1 (sub (sub .Values.terminationGracePeriodSeconds .Values.preStopSleepSeconds) 5) | toString | quote }}
{{- with $c.oidc.issuer }}
PASSPORT_OIDC_ISSUER: {{ . | quote }}
{{- end }}
{{- with $c.oidc.jwksUrl }}
PASSPORT_OIDC_JWKS_URL: {{ . | quote }}
{{- end }}
PASSPORT_OIDC_AUDIENCE: {{ $c.oidc.audience | quote }}
PASSPORT_PUBLIC_BASE_URL: {{ $c.publicBaseUrl | default (printf "https://%s" (index .Values.ingress.hosts 0).host) | quote }}
PASSPORT_OIDC_ALGORITHMS: {{ $c.oidc.algorithms | toJson | quote }}
PASSPORT_CITIZEN_CLIENT_IDS: {{ $c.citizenClientIds | toJson | quote }}
PASSPORT_ADMIN_SUBJECTS: {{ $c.adminSubjects | toJson | quote }}
PASSPORT_OTEL_ENABLED: {{ $c.otel.enabled | toString | quote }}
{{- if $c.otel.enabled }}
PASSPORT_OTEL_SERVICE_NAME: {{ include "competence-passport.name" . | quote }}
{{- end }}
{{- with $c.otel.exporterOtlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- range $name, $value := $c.extraEnv }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* One env entry read from an existing Secret: (dict "env" NAME "ref" .Values.secrets.X). */}}
{{- define "competence-passport.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name }}
      key: {{ .ref.key }}
{{- end }}

{{- define "competence-passport.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "competence-passport.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The writable /tmp, an emptyDir. */}}
{{- define "competence-passport.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
    {{- with .Values.tmpVolume.medium }}
    medium: {{ . }}
    {{- end }}
{{- end }}

{{/* Egress both the pods and the migration Job need: DNS and the database. */}}
{{- define "competence-passport.egressBase" -}}
{{- $egress := .Values.networkPolicy.egress -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
  {{- with $egress.dns.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    - protocol: TCP
      port: {{ $egress.database.port }}
  {{- with $egress.database.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
