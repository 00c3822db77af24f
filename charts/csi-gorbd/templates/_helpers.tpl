{{/* Chart name, overridable. */}}
{{- define "csi-gorbd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name prefix of every namespaced object. */}}
{{- define "csi-gorbd.fullname" -}}
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

{{/* Prefix of cluster-scoped objects: the namespace is part of it so two
releases in different namespaces never collide. */}}
{{- define "csi-gorbd.clusterName" -}}
{{- printf "%s-%s" (include "csi-gorbd.fullname" .) .Release.Namespace | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "csi-gorbd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "csi-gorbd.labels" -}}
helm.sh/chart: {{ include "csi-gorbd.chart" . }}
app.kubernetes.io/name: {{ include "csi-gorbd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: csi-gorbd
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "controller"). */}}
{{- define "csi-gorbd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "csi-gorbd.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "csi-gorbd.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create -}}
{{- default (printf "%s-controller" (include "csi-gorbd.fullname" .)) .Values.controller.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.controller.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "csi-gorbd.node.serviceAccountName" -}}
{{- if .Values.node.serviceAccount.create -}}
{{- default (printf "%s-node" (include "csi-gorbd.fullname" .)) .Values.node.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.node.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "csi-gorbd.configName" -}}
{{- default (printf "%s-config" (include "csi-gorbd.fullname" .)) .Values.clusters.name -}}
{{- end -}}

{{- define "csi-gorbd.secretName" -}}
{{- default (printf "%s-secret" (include "csi-gorbd.fullname" .)) .Values.secret.name -}}
{{- end -}}

{{- define "csi-gorbd.secretNamespace" -}}
{{- default .Release.Namespace .Values.storageClass.secretNamespace -}}
{{- end -}}

{{/* The plugin image reference. */}}
{{- define "csi-gorbd.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A sidecar image reference from its {repository, tag} values. */}}
{{- define "csi-gorbd.sidecarImage" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* Flags shared by the leader-electing controller sidecars. */}}
{{- define "csi-gorbd.leaderElectionArgs" -}}
{{- if .Values.leaderElection.enabled -}}
- --leader-election=true
- --leader-election-namespace={{ .Release.Namespace }}
- --leader-election-lease-duration={{ .Values.leaderElection.leaseDuration }}
- --leader-election-renew-deadline={{ .Values.leaderElection.renewDeadline }}
- --leader-election-retry-period={{ .Values.leaderElection.retryPeriod }}
{{- else -}}
- --leader-election=false
{{- end -}}
{{- end -}}

{{/* The plugin's command line (mode is controller, node or all):
csi-gorbd MODE --endpoint unix:///csi/csi.sock --drivername NAME --nodeid $(NODE_ID)
  --clusters /etc/csi-gorbd/config.json --state-dir DIR --metrics-address :PORT -v N
Call with (dict "ctx" $ "mode" "node" "stateDir" "/run/csi-gorbd" "metricsPort" 9091 "extraArgs" list). */}}
{{- define "csi-gorbd.pluginArgs" -}}
- {{ .mode }}
- --endpoint
- unix:///csi/csi.sock
- --drivername
- {{ .ctx.Values.driverName }}
- --nodeid
- $(NODE_ID)
- --clusters
- /etc/csi-gorbd/config.json
- --state-dir
- {{ .stateDir }}
- --metrics-address
- {{ printf ":%d" (int .metricsPort) | quote }}
- -v
- {{ .ctx.Values.logLevel | quote }}
{{- if .ctx.Values.topology.domainLabels }}
- --domainlabels
- {{ join "," .ctx.Values.topology.domainLabels | quote }}
{{- end }}
{{- range .extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
