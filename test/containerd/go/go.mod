// Test-only programs of the containerd tests (test/containerd/build-tools.sh builds them):
// they use the hooks library the NRI hook-injector plugin uses, at the version it pins, and
// the NRI stub of the version containerd pins.
module rdtmon.test/containerd

go 1.24.0

require (
	github.com/containerd/nri v0.12.3
	github.com/containers/common v0.64.1
	github.com/opencontainers/runtime-spec v1.3.0
	sigs.k8s.io/yaml v1.6.0
)

require (
	github.com/containerd/log v0.1.0 // indirect
	github.com/containerd/ttrpc v1.2.7 // indirect
	github.com/containers/storage v1.59.1 // indirect
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/knqyf263/go-plugin v0.9.0 // indirect
	github.com/sirupsen/logrus v1.9.4 // indirect
	github.com/tetratelabs/wazero v1.11.0 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	golang.org/x/mod v0.32.0 // indirect
	golang.org/x/sys v0.39.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20250313205543-e70fdf4c4cb4 // indirect
	google.golang.org/grpc v1.72.2 // indirect
	google.golang.org/protobuf v1.36.6 // indirect
)
