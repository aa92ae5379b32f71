{{/* The release's resources are named <release>-<part>. */}}
{{- define "panjereh.name" -}}
{{- printf "%s-%s" .root.Release.Name .part | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "panjereh.labels" -}}
app.kubernetes.io/name: panjereh
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .part }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "panjereh.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .part }}
{{- end -}}

{{/* The Secret every credential comes from. */}}
{{- define "panjereh.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" .Release.Name -}}
{{- end -}}
{{- end -}}

{{/* One variable from the Secret. */}}
{{- define "panjereh.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "panjereh.secretName" .root }}
      key: {{ .key }}
{{- end -}}

{{/* The Kafka principal whose password is the Secret's kafka-password-<principal>. */}}
{{- define "panjereh.kafkaEnv" -}}
- name: PANJEREH_KAFKA_USERNAME
  value: {{ .principal | quote }}
{{ include "panjereh.secretEnv" (dict "root" .root "name" "PANJEREH_KAFKA_PASSWORD" "key" (printf "kafka-password-%s" .principal)) }}
{{- end -}}

{{/* A DSN for `role` with the password from the Secret's `key` (expanded by Kubernetes
     from the variable defined just before it). */}}
{{- define "panjereh.databaseEnv" -}}
{{ include "panjereh.secretEnv" (dict "root" .root "name" "PANJEREH_DATABASE_PASSWORD_FOR_URL" "key" .key) }}
- name: PANJEREH_DATABASE_URL
  value: {{ printf "postgresql://%s:$(PANJEREH_DATABASE_PASSWORD_FOR_URL)@%s:%v/%s" .role .root.Values.postgres.host .root.Values.postgres.port .root.Values.postgres.database | quote }}
{{- end -}}

{{/* What every process gets, as in docker-compose.yml's x-panjereh-env. */}}
{{- define "panjereh.commonEnv" -}}
- name: PANJEREH_ENVIRONMENT
  value: {{ .Values.environment | quote }}
- name: PANJEREH_KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: PANJEREH_KAFKA_CA_FILE
  value: {{ printf "/tls/%s" .Values.kafka.caSecret.key | quote }}
- name: PANJEREH_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: PANJEREH_KAFKA_MIN_INSYNC_REPLICAS
  value: {{ .Values.kafka.minInsyncReplicas | quote }}
- name: PANJEREH_DEDUP_HORIZON_DAYS
  value: {{ .Values.dedupHorizonDays | quote }}
- name: PANJEREH_HTTP_HOST
  value: "0.0.0.0"
- name: PANJEREH_IDENTITY_ISSUER
  value: {{ .Values.publicUrls.identity | quote }}
{{ include "panjereh.secretEnv" (dict "root" . "name" "PANJEREH_METRICS_TOKEN" "key" "metrics-token") }}
{{- range $name, $process := .Values.processes }}
- name: {{ printf "PANJEREH_%s_PORT" ($name | upper | replace "-" "_") }}
  value: {{ $process.port | quote }}
{{- end }}
{{- end -}}

{{/* The platform CA, mounted where PANJEREH_KAFKA_CA_FILE says. */}}
{{- define "panjereh.caVolume" -}}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret.name }}
    items:
      - key: {{ .Values.kafka.caSecret.key }}
        path: {{ .Values.kafka.caSecret.key }}
{{- end -}}

{{- define "panjereh.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
{{- end -}}

{{- define "panjereh.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
