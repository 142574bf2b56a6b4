{{/* Names and labels. */}}
{{- define "stemflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 52 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "stemflow.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "stemflow.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{/* A variable from an existing Secret. */}}
{{- define "stemflow.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.secret }}
      key: {{ .ref.key }}
{{- end -}}

{{/* What every service reads: its name, the engines, telemetry, logging. */}}
{{- define "stemflow.commonEnv" -}}
{{- $v := .root.Values -}}
- name: SERVICE
  value: {{ .service }}
- name: PORT
  value: {{ (index $v .service).port | quote }}
- name: LOG_LEVEL
  value: {{ $v.logLevel | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "stemflow-%s" .service }}
{{- if $v.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $v.otlpEndpoint | quote }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{ include "stemflow.secretEnv" (dict "name" "AMQP_URL" "ref" $v.engines.amqpUrl) }}
{{ include "stemflow.secretEnv" (dict "name" "DATABASE_URL" "ref" $v.engines.databaseUrl) }}
- name: S3_ENDPOINT
  value: {{ $v.engines.s3.endpoint | quote }}
- name: S3_BUCKET
  value: {{ $v.engines.s3.bucket | quote }}
- name: S3_REGION
  value: {{ $v.engines.s3.region | quote }}
{{ include "stemflow.secretEnv" (dict "name" "S3_ACCESS_KEY" "ref" $v.engines.s3.accessKey) }}
{{ include "stemflow.secretEnv" (dict "name" "S3_SECRET_KEY" "ref" $v.engines.s3.secretKey) }}
{{- if $v.secrets.metricsToken.secret }}
{{ include "stemflow.secretEnv" (dict "name" "METRICS_TOKEN" "ref" $v.secrets.metricsToken) }}
{{- end }}
{{- range $name, $value := $v.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}
