package chart_test

import (
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// volumeSnapshotClass mirrors snapshot.storage.k8s.io/v1 VolumeSnapshotClass
// (a CRD, not in k8s.io/api).
type volumeSnapshotClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Driver            string            `json:"driver"`
	DeletionPolicy    string            `json:"deletionPolicy"`
	Parameters        map[string]string `json:"parameters,omitempty"`
}

// serviceMonitor mirrors the fields of monitoring.coreos.com/v1
// ServiceMonitor the chart uses.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// typeFor returns an empty Go value of the API type of apiVersion/kind.
func typeFor(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/Service":
		return &corev1.Service{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}
	case "storage.k8s.io/v1/CSIDriver":
		return &storagev1.CSIDriver{}
	case "storage.k8s.io/v1/StorageClass":
		return &storagev1.StorageClass{}
	case "snapshot.storage.k8s.io/v1/VolumeSnapshotClass":
		return &volumeSnapshotClass{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}
	}
	return nil
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// TestStrictDecode decodes every rendered object into its Kubernetes API
// type with unknown fields disallowed: a misspelt field name or a value of
// the wrong type fails here before any apiserver sees it. (Server-side
// validation against a real kube-apiserver can be added over renderCases.)
func TestStrictDecode(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			text, err := renderRaw(t, c)
			if err != nil {
				t.Fatal(err)
			}
			if blank := regexp.MustCompile(`(?m)^[ \t]+$`).FindAllStringIndex(text, -1); len(blank) > 0 {
				t.Errorf("%d whitespace-only lines in the rendered manifests (template whitespace control)", len(blank))
			}
			for _, doc := range docSep.Split(text, -1) {
				var tm metav1.TypeMeta
				if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
					t.Fatal(err)
				}
				if tm.Kind == "" {
					continue
				}
				v := typeFor(tm.APIVersion, tm.Kind)
				if v == nil {
					t.Errorf("unexpected object %s %s", tm.APIVersion, tm.Kind)
					continue
				}
				if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
					t.Errorf("%s: %v\n%s", tm.Kind, err, doc)
					continue
				}
				meta := v.(metav1.ObjectMetaAccessor).GetObjectMeta()
				if !dns1123.MatchString(meta.GetName()) || len(meta.GetName()) > 253 {
					t.Errorf("%s name %q is not a DNS-1123 subdomain", tm.Kind, meta.GetName())
				}
				checkObject(t, v)
			}
		})
	}
}

// checkObject adds the few API rules that matter for this chart.
func checkObject(t *testing.T, v any) {
	t.Helper()
	var pod *corev1.PodSpec
	var labels, selector map[string]string
	switch o := v.(type) {
	case *appsv1.Deployment:
		pod, labels, selector = &o.Spec.Template.Spec, o.Spec.Template.Labels, o.Spec.Selector.MatchLabels
	case *appsv1.DaemonSet:
		pod, labels, selector = &o.Spec.Template.Spec, o.Spec.Template.Labels, o.Spec.Selector.MatchLabels
	default:
		return
	}
	for k, want := range selector {
		if labels[k] != want {
			t.Errorf("pod template labels %v do not match selector %v", labels, selector)
		}
	}
	vols := map[string]bool{}
	for _, vol := range pod.Volumes {
		vols[vol.Name] = true
	}
	ports := map[int32]string{}
	for _, ctr := range pod.Containers {
		for _, m := range ctr.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("container %s mounts undefined volume %s", ctr.Name, m.Name)
			}
			if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional &&
				(ctr.SecurityContext == nil || ctr.SecurityContext.Privileged == nil || !*ctr.SecurityContext.Privileged) {
				t.Errorf("container %s: Bidirectional propagation needs a privileged container", ctr.Name)
			}
		}
		for _, p := range ctr.Ports {
			if other, dup := ports[p.ContainerPort]; dup {
				t.Errorf("port %d used by %s and %s", p.ContainerPort, other, ctr.Name)
			}
			ports[p.ContainerPort] = ctr.Name
			if len(p.Name) > 15 {
				t.Errorf("port name %q longer than 15", p.Name)
			}
		}
	}
}
