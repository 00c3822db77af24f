package chart_test

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestLintStrict(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "--namespace", c.namespace,
				"--kube-version", kubeVersion}, valuesArgs(c.values, nil)...)
			out, errOut, err := runHelm(t, args...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("unexpected lint output:\n%s", out)
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "[WARNING]") || strings.HasPrefix(l, "[ERROR]") {
					t.Errorf("lint: %s", l)
				}
			}
		})
	}
}

// pluginArgs is the command line the plugin's CLI specifies.
func pluginArgs(mode, driver, stateDir, metricsAddr, v string) []string {
	return []string{mode,
		"--endpoint", "unix:///csi/csi.sock",
		"--drivername", driver,
		"--nodeid", "$(NODE_ID)",
		"--clusters", "/etc/csi-gorbd/config.json",
		"--state-dir", stateDir,
		"--metrics-address", metricsAddr,
		"-v", v}
}

func kinds(objs []object) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.kind()]++
	}
	return m
}

func TestDefaultValues(t *testing.T) {
	objs := render(t, renderCases[0])

	want := map[string]int{
		"ServiceAccount": 2, "ConfigMap": 1, "ClusterRole": 4, "ClusterRoleBinding": 4,
		"Role": 1, "RoleBinding": 1, "Service": 2, "DaemonSet": 1, "Deployment": 1, "CSIDriver": 1,
	}
	if got := kinds(objs); !reflect.DeepEqual(got, want) {
		t.Fatalf("kinds rendered with default values:\n got %v\nwant %v", got, want)
	}

	ctrl := find(t, objs, "Deployment", "-controller")
	node := find(t, objs, "DaemonSet", "-node")

	// The plugin command lines, exactly.
	if got, w := strs(container(t, ctrl, "csi-gorbd")["args"]),
		append(pluginArgs("controller", "rbd.csi-gorbd.io", "/run/csi-gorbd", ":9090", "2"), "--node-directory=kubernetes"); !equalStrings(got, w) {
		t.Errorf("controller plugin args:\n got %q\nwant %q", got, w)
	}
	if got, w := strs(container(t, node, "csi-gorbd")["args"]),
		append(append(pluginArgs("node", "rbd.csi-gorbd.io", "/run/csi-gorbd", ":9091", "2"), volumeKeyDirArgs...),
			builtinRegistrationArgs("/var/lib/kubelet", "rbd.csi-gorbd.io")...); !equalStrings(got, w) {
		t.Errorf("node plugin args:\n got %q\nwant %q", got, w)
	}
	for _, w := range []object{ctrl, node} {
		env := maps(container(t, w, "csi-gorbd")["env"])
		if len(env) == 0 || env[0]["name"] != "NODE_ID" || str(dig(env[0], "valueFrom", "fieldRef", "fieldPath")) != "spec.nodeName" {
			t.Errorf("%s: NODE_ID must come from spec.nodeName, env is %v", w.name(), env)
		}
	}

	// Controller: the four sidecars, no livenessprobe sidecar (the
	// plugin serves /healthz), leader election on; the CSIDriver asks for
	// attach, so the attacher's VolumeAttachments reach ControllerPublish.
	if got, w := containerNames(ctrl), []string{"csi-gorbd", "csi-provisioner", "csi-snapshotter", "csi-resizer", "csi-attacher"}; !equalStrings(got, w) {
		t.Errorf("controller containers: got %v want %v", got, w)
	}
	if n := str(dig(ctrl, "spec", "replicas")); n != "2" {
		t.Errorf("controller replicas = %s, want 2", n)
	}
	for _, sc := range []string{"csi-provisioner", "csi-snapshotter", "csi-resizer", "csi-attacher"} {
		args := strs(container(t, ctrl, sc)["args"])
		if !contains(args, "--leader-election=true") || !contains(args, "--leader-election-namespace=kube-system") {
			t.Errorf("%s lacks leader election: %v", sc, args)
		}
		if !contains(args, "--csi-address=/csi/csi.sock") {
			t.Errorf("%s does not talk to /csi/csi.sock: %v", sc, args)
		}
	}
	if args := strs(container(t, ctrl, "csi-resizer")["args"]); !contains(args, "--handle-volume-inuse-error=false") {
		t.Errorf("resizer must not watch pods (its ClusterRole has none): %v", args)
	}
	// VolumeAttributesClasses reach the driver (CreateVolume's mutable
	// parameters, ControllerModifyVolume), whatever the API discovery says.
	for _, sc := range []string{"csi-provisioner", "csi-resizer"} {
		found := false
		for _, a := range strs(container(t, ctrl, sc)["args"]) {
			found = found || strings.HasPrefix(a, "--feature-gates=") && strings.Contains(a, "VolumeAttributesClass=true")
		}
		if !found {
			t.Errorf("%s runs without --feature-gates=VolumeAttributesClass=true", sc)
		}
	}
	if p := str(dig(container(t, ctrl, "csi-gorbd"), "livenessProbe", "httpGet", "path")); p != "/healthz" {
		t.Errorf("controller plugin liveness probe path %q", p)
	}
	if pc := str(dig(ctrl, "spec", "template", "spec", "priorityClassName")); pc != "system-cluster-critical" {
		t.Errorf("controller priorityClassName %q", pc)
	}
	if dig(ctrl, "spec", "template", "spec", "affinity", "podAntiAffinity") == nil {
		t.Errorf("controller replicas should be spread by default pod anti-affinity")
	}

	// Node DaemonSet.
	spec := dig(node, "spec", "template", "spec")
	if str(dig(spec, "hostNetwork")) != "true" || str(dig(spec, "hostPID")) != "false" {
		t.Errorf("node: hostNetwork=%v hostPID=%v, want true/false", dig(spec, "hostNetwork"), dig(spec, "hostPID"))
	}
	if str(dig(spec, "priorityClassName")) != "system-node-critical" {
		t.Errorf("node priorityClassName %v", dig(spec, "priorityClassName"))
	}
	if str(dig(node, "spec", "updateStrategy", "type")) != "OnDelete" {
		t.Errorf("node updateStrategy %v, want OnDelete", dig(node, "spec", "updateStrategy"))
	}
	// Node: the plugin alone; it registers itself with the kubelet.
	if got, w := containerNames(node), []string{"csi-gorbd"}; !equalStrings(got, w) {
		t.Errorf("node containers: got %v want %v", got, w)
	}
	plugin := container(t, node, "csi-gorbd")
	if str(dig(plugin, "securityContext", "privileged")) != "true" {
		t.Errorf("node plugin must be privileged")
	}
	checkNodeMounts(t, node, "/var/lib/kubelet", "/run/csi-gorbd", "rbd.csi-gorbd.io")
	checkBuiltinRegistration(t, node, "/var/lib/kubelet")
	for _, w := range []object{ctrl, node} {
		if p := str(dig(container(t, w, "csi-gorbd"), "readinessProbe", "httpGet", "path")); p != "/readyz" {
			t.Errorf("%s: plugin readiness probe path %q, want /readyz", w.name(), p)
		}
	}

	// CSIDriver.
	drv := find(t, objs, "CSIDriver", "rbd.csi-gorbd.io")
	wantDrv := map[string]any{"attachRequired": true, "podInfoOnMount": false, "fsGroupPolicy": "File",
		"volumeLifecycleModes": []any{"Persistent"}}
	if !reflect.DeepEqual(drv["spec"], wantDrv) {
		t.Errorf("CSIDriver spec:\n got %v\nwant %v", drv["spec"], wantDrv)
	}

	// The clusters ConfigMap holds valid JSON (an empty list by default).
	cm := find(t, objs, "ConfigMap", "-config")
	var clusters []map[string]any
	if err := json.Unmarshal([]byte(str(dig(cm, "data", "config.json"))), &clusters); err != nil || clusters == nil || len(clusters) != 0 {
		t.Errorf("default config.json = %q (err %v), want []", str(dig(cm, "data", "config.json")), err)
	}

	// Sidecar images come from registry.k8s.io/sig-storage with pinned tags.
	for _, w := range []object{ctrl, node} {
		for _, c := range maps(dig(w, "spec", "template", "spec", "containers")) {
			img := str(c["image"])
			if c["name"] == "csi-gorbd" {
				if img != "ghcr.io/csi-gorbd/csi-gorbd:0.1.0" {
					t.Errorf("plugin image %q, want the chart appVersion tag", img)
				}
				continue
			}
			if !strings.HasPrefix(img, "registry.k8s.io/sig-storage/") || !pinnedTag.MatchString(img) {
				t.Errorf("sidecar %v image %q is not a pinned registry.k8s.io/sig-storage image", c["name"], img)
			}
		}
	}

	// Node ServiceAccount has no token and no bindings.
	nsa := find(t, objs, "ServiceAccount", "-node")
	if str(nsa["automountServiceAccountToken"]) != "false" || str(dig(spec, "automountServiceAccountToken")) != "false" {
		t.Errorf("node ServiceAccount token must not be mounted")
	}
	for _, o := range objs {
		if o.kind() != "ClusterRoleBinding" && o.kind() != "RoleBinding" {
			continue
		}
		for _, s := range maps(o["subjects"]) {
			if s["name"] == nsa.name() {
				t.Errorf("%s %s binds the node ServiceAccount", o.kind(), o.name())
			}
		}
	}

	// Metrics Services select the right pods on the named port.
	for _, comp := range []string{"controller", "node"} {
		svc := find(t, objs, "Service", "-"+comp+"-metrics")
		if str(dig(svc, "spec", "selector", "app.kubernetes.io/component")) != comp ||
			str(dig(svc, "spec", "ports", 0, "targetPort")) != "metrics" {
			t.Errorf("Service %s: selector %v ports %v", svc.name(), dig(svc, "spec", "selector"), dig(svc, "spec", "ports"))
		}
	}
}

func contains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

// checkNodeMounts asserts the node plugin's host mounts and their propagation.
func checkNodeMounts(t *testing.T, node object, kubelet, stateDir, driver string) {
	t.Helper()
	plugin := container(t, node, "csi-gorbd")
	type want struct {
		path, propagation string
		readOnly          bool
		hostPath          string
	}
	for _, w := range []want{
		{path: kubelet, propagation: "Bidirectional", hostPath: kubelet},
		{path: "/dev", propagation: "HostToContainer", hostPath: "/dev"},
		{path: "/sys", readOnly: true, hostPath: "/sys"},
		{path: "/lib/modules", readOnly: true, hostPath: "/lib/modules"},
		{path: stateDir, hostPath: stateDir},
		{path: "/csi", hostPath: kubelet + "/plugins/" + driver},
		{path: "/etc/csi-gorbd", readOnly: true},
		// encrypted volumes: the record key on the host's tmpfs, ceph-csi's KMS configuration
		{path: "/run/csi-gorbd-keys", hostPath: "/run/csi-gorbd-keys"},
		{path: "/etc/ceph-csi-encryption-kms-config", readOnly: true},
	} {
		m := mount(t, plugin, w.path)
		if got := str(m["mountPropagation"]); got != w.propagation {
			t.Errorf("mount %s: propagation %q, want %q", w.path, got, w.propagation)
		}
		if got := m["readOnly"] == true; got != w.readOnly {
			t.Errorf("mount %s: readOnly %v, want %v", w.path, got, w.readOnly)
		}
		v := volume(t, node, str(m["name"]))
		if hp := str(dig(v, "hostPath", "path")); hp != w.hostPath {
			t.Errorf("mount %s: hostPath %q, want %q", w.path, hp, w.hostPath)
		}
	}
	// Nothing but the kubelet dir may propagate mounts back to the host.
	for _, c := range maps(dig(node, "spec", "template", "spec", "containers")) {
		for _, m := range maps(c["volumeMounts"]) {
			if m["mountPropagation"] == "Bidirectional" && m["mountPath"] != kubelet {
				t.Errorf("container %v mounts %v Bidirectional", c["name"], m["mountPath"])
			}
		}
	}
}

// volumeKeyDirArgs: the node keeps the record key of encrypted volumes on
// the host's tmpfs (values node.volumeKeyDir).
var volumeKeyDirArgs = []string{"--volume-key-dir", "/run/csi-gorbd-keys"}

// builtinRegistrationArgs are the node plugin's flags for registering
// itself with the kubelet.
func builtinRegistrationArgs(kubelet, driver string) []string {
	return []string{"--kubelet-registration-path", kubelet + "/plugins/" + driver + "/csi.sock",
		"--registration-dir", kubelet + "/plugins_registry"}
}

// checkBuiltinRegistration: the plugin registers itself through the
// kubelet-dir mount (the registration dir it names is under it); no
// registrar container, no separate plugins_registry volume.
func checkBuiltinRegistration(t *testing.T, node object, kubelet string) {
	t.Helper()
	for _, v := range maps(dig(node, "spec", "template", "spec", "volumes")) {
		if str(dig(v, "hostPath", "path")) == kubelet+"/plugins_registry" {
			t.Errorf("volume %v mounts plugins_registry although the plugin registers itself", v["name"])
		}
	}
	if m := mount(t, container(t, node, "csi-gorbd"), kubelet); str(m["mountPropagation"]) != "Bidirectional" {
		t.Errorf("the registration dir is reached through the kubelet dir mount: %v", m)
	}
}

// checkRegistrarSidecar: node-driver-registrar registers the plugin's
// socket from the registration dir and the plugin does not register.
func checkRegistrarSidecar(t *testing.T, node object, kubelet, driver string) {
	t.Helper()
	reg := container(t, node, "node-driver-registrar")
	if args := strs(reg["args"]); !contains(args, "--kubelet-registration-path="+kubelet+"/plugins/"+driver+"/csi.sock") {
		t.Errorf("registrar args %v", args)
	}
	if hp := str(dig(volume(t, node, str(mount(t, reg, "/registration")["name"])), "hostPath", "path")); hp != kubelet+"/plugins_registry" {
		t.Errorf("registration dir hostPath %q", hp)
	}
	if args := strs(container(t, node, "csi-gorbd")["args"]); contains(args, "--kubelet-registration-path") {
		t.Errorf("plugin registers itself next to the registrar sidecar: %v", args)
	}
}

func TestFullValues(t *testing.T) {
	objs := render(t, renderCases[1])

	for kind, n := range map[string]int{"Secret": 1, "StorageClass": 1, "VolumeSnapshotClass": 1, "ServiceMonitor": 1} {
		if got := count(objs, kind); got != n {
			t.Errorf("%d %s objects, want %d", got, kind, n)
		}
	}
	for _, o := range objs {
		if o.kind() == "Secret" || o.kind() == "StorageClass" || o.kind() == "VolumeSnapshotClass" ||
			o.kind() == "CSIDriver" || o.kind() == "ClusterRole" || o.kind() == "ClusterRoleBinding" {
			continue
		}
		if ns := str(dig(o, "metadata", "namespace")); ns != "csi" {
			t.Errorf("%s %s in namespace %q, want csi", o.kind(), o.name(), ns)
		}
		if str(dig(o, "metadata", "labels", "team")) != "storage" {
			t.Errorf("%s %s lacks commonLabels", o.kind(), o.name())
		}
	}

	ctrl := find(t, objs, "Deployment", "gorbd-controller")
	node := find(t, objs, "DaemonSet", "gorbd-node")
	if got, w := strs(container(t, ctrl, "csi-gorbd")["args"]),
		append(pluginArgs("controller", "rbd.example.org", "/run/csi-gorbd", ":19090", "5"), "--some-flag=1", "--node-directory=kubernetes"); !equalStrings(got, w) {
		t.Errorf("controller plugin args:\n got %q\nwant %q", got, w)
	}
	if got, w := strs(container(t, node, "csi-gorbd")["args"]),
		append(pluginArgs("node", "rbd.example.org", "/var/run/gorbd-state", ":19091", "5"), volumeKeyDirArgs...); !equalStrings(got, w) {
		t.Errorf("node plugin args:\n got %q\nwant %q", got, w)
	}
	if img := str(container(t, node, "csi-gorbd")["image"]); img != "registry.example.org/csi-gorbd:v9.9.9" {
		t.Errorf("plugin image %q", img)
	}
	if got, w := containerNames(ctrl), []string{"csi-gorbd", "csi-provisioner", "csi-snapshotter", "csi-resizer", "csi-attacher", "liveness-probe"}; !equalStrings(got, w) {
		t.Errorf("controller containers with livenessprobe on: %v", got)
	}
	if got, w := containerNames(node), []string{"csi-gorbd", "node-driver-registrar", "liveness-probe"}; !equalStrings(got, w) {
		t.Errorf("node containers with the registrar and livenessprobe sidecars on: %v", got)
	}
	// Liveness never depends on the sidecar (whose CSI Probe checks Ceph).
	for _, o := range []object{ctrl, node} {
		if p := str(dig(container(t, o, "csi-gorbd"), "livenessProbe", "httpGet", "port")); p != "metrics" {
			t.Errorf("plugin liveness probe port %q with the livenessprobe sidecar on, want metrics", p)
		}
		if args := strs(container(t, o, "liveness-probe")["args"]); !contains(args, "--csi-address=/csi/csi.sock") {
			t.Errorf("%s: livenessprobe args %v", o.name(), args)
		}
	}
	if p := str(dig(container(t, ctrl, "csi-gorbd"), "readinessProbe", "httpGet", "path")); p != "/readyz" {
		t.Errorf("controller plugin readiness probe path %q", p)
	}
	if args := strs(container(t, ctrl, "csi-provisioner")["args"]); !contains(args, "--default-fstype=xfs") ||
		!contains(args, "--leader-election-lease-duration=30s") || !contains(args, "--v=3") {
		t.Errorf("provisioner args %v", args)
	}
	if args := strs(container(t, ctrl, "csi-snapshotter")["args"]); !contains(args, "--worker-threads=4") ||
		!contains(args, "--feature-gates=CSIVolumeGroupSnapshot=true") {
		t.Errorf("snapshotter extraArgs or group snapshot feature gate missing: %v", args)
	}
	if n := str(dig(ctrl, "spec", "replicas")); n != "3" {
		t.Errorf("replicas %s", n)
	}
	cspec := dig(ctrl, "spec", "template", "spec")
	if dig(cspec, "priorityClassName") != nil || str(dig(cspec, "hostNetwork")) != "true" ||
		str(dig(cspec, "dnsPolicy")) != "ClusterFirstWithHostNet" || dig(cspec, "affinity", "nodeAffinity") == nil ||
		dig(cspec, "affinity", "podAntiAffinity") != nil || str(dig(cspec, "imagePullSecrets", 0, "name")) != "regcred" {
		t.Errorf("controller pod spec does not follow values: %v", cspec)
	}

	nspec := dig(node, "spec", "template", "spec")
	if str(dig(nspec, "hostPID")) != "true" || dig(nspec, "tolerations") != nil ||
		str(dig(nspec, "nodeSelector", "storage")) != "true" {
		t.Errorf("node pod spec does not follow values")
	}
	if str(dig(node, "spec", "updateStrategy", "type")) != "RollingUpdate" ||
		str(dig(node, "spec", "updateStrategy", "rollingUpdate", "maxUnavailable")) != "1" {
		t.Errorf("node updateStrategy %v", dig(node, "spec", "updateStrategy"))
	}
	checkNodeMounts(t, node, "/var/lib/k0s/kubelet", "/var/run/gorbd-state", "rbd.example.org")
	checkRegistrarSidecar(t, node, "/var/lib/k0s/kubelet", "rbd.example.org")

	// Secret: exactly ceph-csi's keys.
	sec := find(t, objs, "Secret", "ceph-kubernetes")
	if want := map[string]any{"userID": "kubernetes", "userKey": "AQBtest0000000000000000000000000000000000=="}; !reflect.DeepEqual(sec["stringData"], want) {
		t.Errorf("secret data %v", sec["stringData"])
	}

	// StorageClass parameters, exactly.
	sc := find(t, objs, "StorageClass", "fast")
	wantParams := map[string]any{
		"clusterID": "prod", "pool": "kube", "dataPool": "kube-ec",
		"imageFeatures": "layering,exclusive-lock", "volumeNamePrefix": "k8s-",
		"csi.storage.k8s.io/fstype": "xfs", "mkfsOptions": "-m reflink=0",
		"csi.storage.k8s.io/provisioner-secret-name":             "ceph-kubernetes",
		"csi.storage.k8s.io/provisioner-secret-namespace":        "csi",
		"csi.storage.k8s.io/controller-expand-secret-name":       "ceph-kubernetes",
		"csi.storage.k8s.io/controller-expand-secret-namespace":  "csi",
		"csi.storage.k8s.io/controller-publish-secret-name":      "ceph-kubernetes",
		"csi.storage.k8s.io/controller-publish-secret-namespace": "csi",
		"csi.storage.k8s.io/node-stage-secret-name":              "ceph-kubernetes",
		"csi.storage.k8s.io/node-stage-secret-namespace":         "csi",
		"custom": "yes",
	}
	if !reflect.DeepEqual(sc["parameters"], wantParams) {
		t.Errorf("StorageClass parameters:\n got %v\nwant %v", sc["parameters"], wantParams)
	}
	if sc["provisioner"] != "rbd.example.org" || sc["reclaimPolicy"] != "Retain" || sc["allowVolumeExpansion"] != true ||
		sc["volumeBindingMode"] != "WaitForFirstConsumer" || !equalStrings(strs(sc["mountOptions"]), []string{"discard"}) ||
		str(dig(sc, "metadata", "annotations", "storageclass.kubernetes.io/is-default-class")) != "true" {
		t.Errorf("StorageClass fields: %v", sc)
	}

	vsc := find(t, objs, "VolumeSnapshotClass", "fast-snap")
	wantVSC := map[string]any{"clusterID": "prod",
		"csi.storage.k8s.io/snapshotter-secret-name":      "ceph-kubernetes",
		"csi.storage.k8s.io/snapshotter-secret-namespace": "csi"}
	if !reflect.DeepEqual(vsc["parameters"], wantVSC) || vsc["driver"] != "rbd.example.org" || vsc["deletionPolicy"] != "Retain" ||
		str(dig(vsc, "apiVersion")) != "snapshot.storage.k8s.io/v1" {
		t.Errorf("VolumeSnapshotClass: %v", vsc)
	}

	// config.json in ceph-csi's shape.
	cm := find(t, objs, "ConfigMap", "gorbd-config")
	var clusters []struct {
		ClusterID string   `json:"clusterID"`
		Monitors  []string `json:"monitors"`
	}
	if err := json.Unmarshal([]byte(str(dig(cm, "data", "config.json"))), &clusters); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if len(clusters) != 2 || clusters[0].ClusterID != "prod" || len(clusters[0].Monitors) != 3 ||
		clusters[0].Monitors[2] != "[v2:10.0.0.3:3300,v1:10.0.0.3:6789]" || clusters[1].ClusterID != "backup" {
		t.Errorf("config.json clusters %+v", clusters)
	}
	if v := str(dig(volume(t, node, "config"), "configMap", "name")); v != cm.name() {
		t.Errorf("node mounts ConfigMap %q, want %q", v, cm.name())
	}

	sm := find(t, objs, "ServiceMonitor", "gorbd")
	if str(dig(sm, "metadata", "labels", "release")) != "prometheus" || str(dig(sm, "spec", "endpoints", 0, "interval")) != "15s" ||
		str(dig(sm, "spec", "endpoints", 0, "port")) != "metrics" {
		t.Errorf("ServiceMonitor %v", sm)
	}
}

// rule is one RBAC rule, flattened for comparison.
type rule struct{ group, resource, verbs string }

func rules(o object) []rule {
	var out []rule
	for _, r := range maps(o["rules"]) {
		verbs := strs(r["verbs"])
		sort.Strings(verbs)
		for _, g := range strs(r["apiGroups"]) {
			for _, res := range strs(r["resources"]) {
				out = append(out, rule{g, res, strings.Join(verbs, ",")})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].group != out[j].group {
			return out[i].group < out[j].group
		}
		return out[i].resource < out[j].resource
	})
	return out
}

// TestRBACLeastPrivilege pins every rule: a widened permission must be a
// deliberate change of this table.
func TestRBACLeastPrivilege(t *testing.T) {
	objs := render(t, renderCases[0])
	want := map[string][]rule{
		"-provisioner": {
			{"", "events", "create,list,patch,update,watch"},
			{"", "persistentvolumeclaims", "get,list,update,watch"},
			{"", "persistentvolumes", "create,delete,get,list,patch,update,watch"},
			{"", "secrets", "get"},
			{"snapshot.storage.k8s.io", "volumesnapshotcontents", "get,list"},
			{"snapshot.storage.k8s.io", "volumesnapshots", "get,list,update,watch"},
			{"storage.k8s.io", "storageclasses", "get,list,watch"},
			{"storage.k8s.io", "volumeattachments", "get,list,watch"},
			{"storage.k8s.io", "volumeattributesclasses", "get,list,watch"},
		},
		"-snapshotter": {
			{"", "events", "create,list,patch,update,watch"},
			{"", "secrets", "get"},
			{"groupsnapshot.storage.k8s.io", "volumegroupsnapshotclasses", "get,list,watch"},
			{"groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents", "get,list,patch,update,watch"},
			{"groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents/status", "patch,update"},
			{"snapshot.storage.k8s.io", "volumesnapshotclasses", "get,list,watch"},
			{"snapshot.storage.k8s.io", "volumesnapshotcontents", "create,get,list,patch,update,watch"},
			{"snapshot.storage.k8s.io", "volumesnapshotcontents/status", "patch,update"},
		},
		"-resizer": {
			{"", "events", "create,list,patch,update,watch"},
			{"", "persistentvolumeclaims", "get,list,watch"},
			{"", "persistentvolumeclaims/status", "patch"},
			{"", "persistentvolumes", "get,list,patch,watch"},
			{"", "secrets", "get"},
			{"storage.k8s.io", "volumeattributesclasses", "get,list,watch"},
		},
		"-attacher": {
			{"", "persistentvolumes", "get,list,patch,watch"},
			{"", "secrets", "get"},
			{"storage.k8s.io", "csinodes", "get,list,watch"},
			{"storage.k8s.io", "volumeattachments", "get,list,patch,watch"},
			{"storage.k8s.io", "volumeattachments/status", "patch"},
		},
	}
	for suffix, w := range want {
		cr := find(t, objs, "ClusterRole", suffix)
		if got := rules(cr); !reflect.DeepEqual(got, w) {
			t.Errorf("ClusterRole %s rules:\n got %v\nwant %v", cr.name(), got, w)
		}
		crb := find(t, objs, "ClusterRoleBinding", suffix)
		if str(dig(crb, "roleRef", "name")) != cr.name() || str(dig(crb, "subjects", 0, "name")) != "t-csi-gorbd-controller" ||
			str(dig(crb, "subjects", 0, "namespace")) != "kube-system" {
			t.Errorf("ClusterRoleBinding %s: %v", crb.name(), crb)
		}
	}
	role := find(t, objs, "Role", "-leader-election")
	if got, w := rules(role), []rule{{"coordination.k8s.io", "leases", "create,delete,get,list,patch,update,watch"}}; !reflect.DeepEqual(got, w) {
		t.Errorf("leader election Role rules %v", got)
	}
	if str(dig(role, "metadata", "namespace")) != "kube-system" {
		t.Errorf("leader election Role namespace %v", dig(role, "metadata", "namespace"))
	}
	if sa := str(dig(find(t, objs, "Deployment", "-controller"), "spec", "template", "spec", "serviceAccountName")); sa != "t-csi-gorbd-controller" {
		t.Errorf("controller runs as %q", sa)
	}

	// Turning sidecars off drops their roles; leader election off drops the Role and the flags.
	objs = render(t, renderCases[0], "sidecars.snapshotter.enabled=false", "sidecars.resizer.enabled=false",
		"leaderElection.enabled=false", "controller.replicas=1")
	if count(objs, "ClusterRole") != 2 || count(objs, "Role") != 0 || count(objs, "RoleBinding") != 0 {
		t.Errorf("with snapshotter/resizer/leader election off: %v", kinds(objs))
	}
	ctrl := find(t, objs, "Deployment", "-controller")
	if got := containerNames(ctrl); !equalStrings(got, []string{"csi-gorbd", "csi-provisioner", "csi-attacher"}) {
		t.Errorf("containers %v", got)
	}
	// The attacher off: no attach, no role, no node lookups, no publish secret.
	objs = render(t, renderCases[0], "sidecars.attacher.enabled=false")
	if containsAny(kinds(objs), "ClusterRole", 4) || contains(containerNames(find(t, objs, "Deployment", "-controller")), "csi-attacher") ||
		contains(strs(container(t, find(t, objs, "Deployment", "-controller"), "csi-gorbd")["args"]), "--node-directory=kubernetes") {
		t.Errorf("attacher off: %v", kinds(objs))
	}
	if ar := str(dig(find(t, objs, "CSIDriver", ""), "spec", "attachRequired")); ar != "false" {
		t.Errorf("CSIDriver attachRequired = %s with the attacher off", ar)
	}
	if args := strs(container(t, ctrl, "csi-provisioner")["args"]); !contains(args, "--leader-election=false") {
		t.Errorf("provisioner args with leader election off: %v", args)
	}
}

// TestSchemaRejectsBadValues: values.schema.json must refuse a bad file in
// both lint and template, naming each offending key.
func TestSchemaRejectsBadValues(t *testing.T) {
	bad := renderCase{name: "bad", namespace: "csi", values: []string{"testdata/bad-values.yaml"}}
	_, err := renderRaw(t, bad)
	if err == nil {
		t.Fatal("helm template accepted testdata/bad-values.yaml")
	}
	for _, key := range []string{"/node/updateStrategy/type", "/node/hostPID", "/controller/replicas",
		"/secret/userID", "/storageClass/fstype", "unknownTopLevelKey"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("schema error does not mention %s:\n%v", key, err)
		}
	}
	args := append([]string{"lint", "--strict", chartDir, "--kube-version", kubeVersion}, valuesArgs(bad.values, nil)...)
	if out, _, err := runHelm(t, args...); err == nil {
		t.Errorf("helm lint --strict accepted bad values:\n%s", out)
	}

	// Single bad settings on top of good values.
	for _, set := range []string{
		"node.kubeletDir=relative/path",
		"clusters.list[0].clusterID=x",    // no monitors
		"sidecars.provisioner.timeout=10", // not a duration
		"driverName=Bad_Name",
		"storageClass.reclaimPolicy=Recycle",
		"controller.metricsPort=70000",
	} {
		if _, err := renderRaw(t, renderCases[0], set); err == nil {
			t.Errorf("--set %s was accepted", set)
		}
	}
}

// TestRequiredValues: optional objects refuse to render half-configured.
func TestRequiredValues(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"storageClass.create=true", "storageClass.pool=p"}, "storageClass.clusterID"},
		{[]string{"storageClass.create=true", "storageClass.clusterID=c"}, "storageClass.pool"},
		{[]string{"secret.create=true", "secret.userID=u"}, "secret.userKey"},
		{[]string{"volumeSnapshotClass.create=true"}, "volumeSnapshotClass.clusterID"},
		{[]string{"leaderElection.enabled=false"}, "leaderElection.enabled=true"},
	} {
		_, err := renderRaw(t, renderCases[0], tc.set...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--set %v: error %v, want one naming %s", tc.set, err, tc.want)
		}
	}
	// The classes default their secret to <fullname>-secret in the release namespace.
	objs := render(t, renderCases[0], "storageClass.create=true", "storageClass.clusterID=c",
		"storageClass.pool=p", "volumeSnapshotClass.create=true")
	sc := find(t, objs, "StorageClass", "csi-gorbd")
	if str(dig(sc, "parameters", "csi.storage.k8s.io/node-stage-secret-name")) != "t-csi-gorbd-secret" ||
		str(dig(sc, "parameters", "csi.storage.k8s.io/node-stage-secret-namespace")) != "kube-system" ||
		dig(sc, "parameters", "dataPool") != nil || dig(sc, "parameters", "mkfsOptions") != nil ||
		str(dig(sc, "parameters", "imageFeatures")) != "layering" {
		t.Errorf("StorageClass defaults: %v", sc["parameters"])
	}
	if str(dig(find(t, objs, "VolumeSnapshotClass", "csi-gorbd-snapclass"), "parameters", "clusterID")) != "c" {
		t.Errorf("VolumeSnapshotClass should default clusterID to storageClass.clusterID")
	}
}

// containsAny reports whether kind appears n times in m.
func containsAny(m map[string]int, kind string, n int) bool { return m[kind] == n }
