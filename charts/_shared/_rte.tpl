{{- /*
_rte.tpl - the one pattern of every RTE service chart.

Each charts/<service>/templates/_rte.tpl is a symbolic link to this file
(Helm reads the linked file, and `helm package` stores its contents), so the
five charts render the same objects from their own values: ConfigMap,
Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler and,
optionally, ServiceMonitor and PrometheusRule. A chart's own templates/*.yaml
only include the named templates below; what differs between services is in
its values.yaml (ports, probes.grpc, the autoscaling signal, secretEnv).

What every pod gets: the config as /etc/rte/config.yaml from the ConfigMap
(plus any `rte.extraFiles` a chart defines), a checksum of the config in the
pod template so a config change rolls the Deployment, secrets only as
secretKeyRef environment variables, non-root with a read-only root
filesystem, every capability dropped and the RuntimeDefault seccomp profile,
an emptyDir on /tmp, liveness on the admin port's /healthz, readiness on
/readyz or (probes.grpc) through the native gRPC probe, and a topology
spread over zones and nodes.

global.config (set by charts/rte-suite) is merged over each chart's config:
what the umbrella says for the whole suite wins.

Helm's named templates are global to a release: under charts/rte-suite the
five subcharts define these same names, which is harmless only because they
are one file. Never edit a chart's copy; there is none, only the link.
*/ -}}

{{- define "rte.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rte.fullname" -}}
{{- printf "%s-%s" .Release.Name (include "rte.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rte.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rte.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rte.labels" -}}
{{ include "rte.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: rte-suite
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- /*
the config the service reads: the chart's config with global.config over
it, section by section, for the sections the chart's config has (a service
that reads no cache.* or slots.* gets none)
*/ -}}
{{- define "rte.config" -}}
{{- $global := dict -}}
{{- if and .Values.global .Values.global.config -}}
{{- range $section, $v := .Values.global.config -}}
{{- if hasKey $.Values.config $section -}}
{{- $_ := set $global $section (deepCopy $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (mergeOverwrite (deepCopy .Values.config) $global) -}}
{{- end -}}

{{- define "rte.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "rte.fullname" . }}
  labels:
    {{- include "rte.labels" . | nindent 4 }}
data:
  config.yaml: |
    {{- include "rte.config" . | nindent 4 }}
{{- range $name, $text := pick .Values "schedules" "model" }}
  {{ $name }}.yaml: |
    {{- $text | nindent 4 }}
{{- end }}
{{- end -}}

{{- /*
rte.checkPorts - the ports the Service, the probes and the container declare
are the ports the service listens on: each config.<x>.addr (or its default
from docs/configuration.md) must end in the matching service.<x>Port, or the
render fails naming both.
*/ -}}
{{- define "rte.checkPorts" -}}
{{- $c := .Values.config -}}
{{- $pairs := list (list "admin" "adminPort" "0.0.0.0:9090") (list "grpc" "grpcPort" "0.0.0.0:50051") -}}
{{- if .Values.service.httpPort -}}
{{- $pairs = append $pairs (list "http" "httpPort" "0.0.0.0:8080") -}}
{{- end -}}
{{- range $pairs -}}
{{- $section := index . 0 -}}
{{- $port := index $.Values.service (index . 1) -}}
{{- $addr := index . 2 -}}
{{- if and (hasKey $c $section) (hasKey (index $c $section) "addr") -}}
{{- $addr = index (index $c $section) "addr" -}}
{{- end -}}
{{- if not (hasSuffix (printf ":%v" $port) (toString $addr)) -}}
{{- fail (printf "config.%s.addr is %q but service.%s is %v: they must name the same port" $section (toString $addr) (index . 1) $port) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rte.deployment" -}}
{{- include "rte.checkPorts" . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "rte.fullname" . }}
  labels:
    {{- include "rte.labels" . | nindent 4 }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "rte.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels:
        {{- include "rte.labels" . | nindent 8 }}
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # a config change rolls the pods (files the service reloads itself,
        # such as member-cron's schedules and model, are not in the sum)
        checksum/config: {{ include "rte.config" . | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with .Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: {{ include "rte.name" . }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          imagePullPolicy: {{ .Values.image.pullPolicy | default "IfNotPresent" }}
          args: ["--config", "/etc/rte/config.yaml"]
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities: {drop: ["ALL"]}
            seccompProfile: {type: RuntimeDefault}
          {{- if or .Values.secretEnv .Values.extraEnv }}
          env:
            {{- range $var, $key := .Values.secretEnv }}
            - name: {{ $var }}
              valueFrom:
                secretKeyRef: {name: {{ $.Values.existingSecret }}, key: {{ $key }}}
            {{- end }}
            {{- with .Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
          ports:
            {{- if .Values.service.httpPort }}
            - {name: http, containerPort: {{ .Values.service.httpPort }}}
            {{- end }}
            - {name: admin, containerPort: {{ .Values.service.adminPort }}}
            - {name: grpc, containerPort: {{ .Values.service.grpcPort }}}
          startupProbe:
            httpGet: {path: /healthz, port: admin}
            periodSeconds: 2
            failureThreshold: {{ .Values.probes.startupFailureThreshold | default 30 }}
          livenessProbe:
            httpGet: {path: /healthz, port: admin}
            periodSeconds: {{ .Values.probes.livenessPeriodSeconds | default 10 }}
            failureThreshold: 3
          readinessProbe:
            {{- if .Values.probes.grpc }}
            grpc: {port: {{ .Values.service.grpcPort }}}
            {{- else }}
            httpGet: {path: /readyz, port: admin}
            {{- end }}
            periodSeconds: {{ .Values.probes.readinessPeriodSeconds | default 2 }}
            failureThreshold: 2
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          volumeMounts:
            - {name: config, mountPath: /etc/rte, readOnly: true}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: config
          configMap:
            name: {{ include "rte.fullname" . }}
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
      {{- if .Values.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $key := list .Values.topologySpread.zoneKey .Values.topologySpread.hostKey }}
        {{- if $key }}
        - maxSkew: {{ $.Values.topologySpread.maxSkew | default 1 }}
          topologyKey: {{ $key }}
          whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable | default "ScheduleAnyway" }}
          labelSelector:
            matchLabels:
              {{- include "rte.selectorLabels" $ | nindent 14 }}
          matchLabelKeys: [pod-template-hash]
        {{- end }}
        {{- end }}
      {{- end }}
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{- define "rte.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "rte.fullname" . }}
  labels:
    {{- include "rte.labels" . | nindent 4 }}
spec:
  type: {{ .Values.service.type }}
  selector:
    {{- include "rte.selectorLabels" . | nindent 4 }}
  ports:
    {{- if .Values.service.httpPort }}
    - {name: http, port: {{ .Values.service.httpPort }}, targetPort: http}
    {{- end }}
    - {name: admin, port: {{ .Values.service.adminPort }}, targetPort: admin}
    - {name: grpc, port: {{ .Values.service.grpcPort }}, targetPort: grpc, appProtocol: grpc}
{{- end -}}

{{- define "rte.pdb" -}}
{{- if .Values.podDisruptionBudget.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "rte.fullname" . }}
  labels:
    {{- include "rte.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable | default 1 }}
  selector:
    matchLabels:
      {{- include "rte.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "rte.hpa" -}}
{{- if .Values.autoscaling.enabled }}
{{- $a := .Values.autoscaling }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "rte.fullname" . }}
  labels:
    {{- include "rte.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "rte.fullname" . }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    {{- if $a.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ $a.targetCPUUtilizationPercentage }}}
    {{- end }}
    {{- with $a.external }}
    - type: External
      external:
        metric:
          name: {{ .metric }}
          {{- with .selector }}
          selector:
            matchLabels:
              {{- toYaml . | nindent 14 }}
          {{- end }}
        target: {type: AverageValue, averageValue: {{ .averageValue | quote }}}
    {{- end }}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
      policies: [{type: Pods, value: 1, periodSeconds: 60}]
{{- end }}
{{- end -}}

{{- define "rte.servicemonitor" -}}
{{- if .Values.serviceMonitor.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "rte.fullname" . }}
  labels:
    {{- include "rte.labels" . | nindent 4 }}
    {{- with .Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "rte.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: admin
      path: /metrics
      interval: {{ .Values.serviceMonitor.interval | default "30s" }}
{{- end }}
{{- end -}}

{{- /*
rte.prometheusrule - the chart's files/*.rules.yml, as they are: each file is
a Prometheus rules file ("groups:"), the same files promtool checks in the
tests, so the groups of all of them make the PrometheusRule's spec.
*/ -}}
{{- define "rte.prometheusrule" -}}
{{- if .Values.prometheusRule.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ include "rte.fullname" . }}
  labels:
    {{- include "rte.labels" . | nindent 4 }}
    {{- with .Values.prometheusRule.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  groups:
    {{- range $path, $_ := .Files.Glob "files/*.rules.yml" }}
    {{- $rules := $.Files.Get $path | fromYaml }}
    {{- toYaml $rules.groups | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}

{{- /* rte.notes - the part of NOTES.txt every chart shares: what was installed and how to check it */ -}}
{{- define "rte.notes" -}}
{{- $name := include "rte.fullname" . -}}
Installed {{ .Chart.Name }} {{ .Chart.AppVersion }} as Deployment/{{ $name }} in namespace {{ .Release.Namespace }}
({{ if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}-{{ .Values.autoscaling.maxReplicas }} replicas, autoscaled{{ else }}{{ .Values.replicaCount }} replicas{{ end }}), with Service/{{ $name }}, ConfigMap/{{ $name }}
{{- if .Values.podDisruptionBudget.enabled }}, PodDisruptionBudget/{{ $name }}{{ end }}
{{- if .Values.autoscaling.enabled }}, HorizontalPodAutoscaler/{{ $name }}{{ end }}
{{- if .Values.serviceMonitor.enabled }}, ServiceMonitor/{{ $name }}{{ end }}
{{- if .Values.prometheusRule.enabled }}, PrometheusRule/{{ $name }}{{ end }}.

{{ if .Values.secretEnv -}}
Secrets are read from Secret/{{ .Values.existingSecret }}, which this chart does not create:
{{- range $var, $key := .Values.secretEnv }}
  {{ $var }} <- key {{ $key }}
{{- end }}
{{- else -}}
No secret is read.
{{- end }}

Check it:
  kubectl -n {{ .Release.Namespace }} rollout status deployment/{{ $name }}
  kubectl -n {{ .Release.Namespace }} port-forward service/{{ $name }} {{ .Values.service.adminPort }}:{{ .Values.service.adminPort }} &
  curl -s localhost:{{ .Values.service.adminPort }}/readyz     # each dependency (redis, kafka) and whether it answers
  curl -s localhost:{{ .Values.service.adminPort }}/metrics | grep rte_dependency_up
Before changing values, run the new config through the service itself:
  kubectl -n {{ .Release.Namespace }} exec deployment/{{ $name }} -- {{ .Chart.Name }} --config /etc/rte/config.yaml --check-config
{{- end -}}
