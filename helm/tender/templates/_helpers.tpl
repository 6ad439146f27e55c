{{/* Names and labels shared by every template. */}}

{{- define "tender.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name; truncated to 63 characters, a DNS label's limit. */}}
{{- define "tender.fullname" -}}
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

{{- define "tender.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tender.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tender.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tender.labels" -}}
helm.sh/chart: {{ include "tender.chart" . }}
{{ include "tender.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tender
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tender.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tender.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tender.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tender.stepServiceAccountName" -}}
{{- if .Values.stepServiceAccount.create }}
{{- default (printf "%s-step" (include "tender.fullname" .) | trunc 63 | trimSuffix "-") .Values.stepServiceAccount.name }}
{{- else }}
{{- required "stepServiceAccount.name must name an existing ServiceAccount when stepServiceAccount.create is false" .Values.stepServiceAccount.name }}
{{- end }}
{{- end }}

{{/* Where Workflows run: config.argoNamespace, else the release's namespace. */}}
{{- define "tender.argoNamespace" -}}
{{- default .Release.Namespace .Values.config.argoNamespace }}
{{- end }}

{{- define "tender.dataDir" -}}/var/lib/tender{{- end }}

{{- define "tender.port" -}}8080{{- end }}

{{/* The URL the gateway hands out: config.externalUrl, else the ingress' first host, else the
Service's in-cluster address. */}}
{{- define "tender.externalUrl" -}}
{{- if .Values.config.externalUrl }}
{{- .Values.config.externalUrl }}
{{- else if .Values.ingress.enabled }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) $host }}
{{- else }}
{{- include "tender.serviceUrl" . }}
{{- end }}
{{- end }}

{{/* The Service's in-cluster address. */}}
{{- define "tender.serviceUrl" -}}
{{- printf "http://%s.%s.svc:%v" (include "tender.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{/* The URL steps reach the gateway at (their SDK's): config.internalUrl, else the Service's
in-cluster address (steps run in pods of the cluster, not beside the gateway). */}}
{{- define "tender.internalUrl" -}}
{{- default (include "tender.serviceUrl" .) .Values.config.internalUrl }}
{{- end }}

{{/* The claim holding the SQLite file. */}}
{{- define "tender.claimName" -}}
{{- default (printf "%s-data" (include "tender.fullname" .)) .Values.database.sqlite.persistence.existingClaim }}
{{- end }}

{{/* The env every container running tender gets: the ConfigMap, then the secrets. */}}
{{- define "tender.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "tender.fullname" . }}
  {{- with .Values.extraEnvFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $secrets := or (eq .Values.database.type "postgresql") .Values.s3Credentials.existingSecret .Values.extraEnv }}
{{- if $secrets }}
env:
  {{- if eq .Values.database.type "postgresql" }}
  - name: TENDER_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ .Values.database.postgresql.existingSecret }}
        key: {{ .Values.database.postgresql.urlKey }}
  {{- end }}
  {{- with .Values.s3Credentials.existingSecret }}
  - name: TENDER_S3_ACCESS_KEY_ID
    valueFrom:
      secretKeyRef:
        name: {{ . }}
        key: {{ $.Values.s3Credentials.accessKeyIdKey }}
  - name: TENDER_S3_SECRET_ACCESS_KEY
    valueFrom:
      secretKeyRef:
        name: {{ . }}
        key: {{ $.Values.s3Credentials.secretAccessKeyKey }}
  {{- end }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "tender.volumeMounts" -}}
- name: data
  mountPath: {{ include "tender.dataDir" . }}
- name: tmp
  mountPath: /tmp
{{- end }}
