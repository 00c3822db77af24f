// Package chart holds the tests of the Helm chart in charts/csi-gorbd and of
// the container image recipe (Dockerfile); it has no library code.
//
// The tests exec a real helm binary (installed by test/tools.sh into
// $(go env GOPATH)/bin): `helm lint --strict`, then `helm template` with the
// default values and with each values file in testdata/, and assert on the
// rendered objects after parsing them as YAML. A missing helm skips the
// tests on a developer machine and fails them in CI (CI or
// GORBD_REQUIRE_CLUSTERS=1 set, see internal/cephtest.Required).
//
// Every rendering goes through renderCases and render, so a later
// server-side check (`kubectl apply --dry-run=server` against the
// kube-apiserver of test/e2e) can iterate the same cases and feed it the
// same manifests.
package chart
