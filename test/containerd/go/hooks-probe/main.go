// hooks-probe does what the NRI hook-injector plugin does for a new container, and only
// that: load the hooks.d files of the plugin's two default directories with containers/common
// pkg/hooks (hooks.New), then ask for the hooks of a container with the given annotations
// (Manager.Hooks). It prints the resulting OCI "hooks" object as JSON ({} when none), so a
// test can run it inside a mount namespace laid out like the plugin's container and see
// which hooks would be injected.
//
//	hooks-probe [-annotation KEY=VALUE]... [-bind-mounts] [ARGS...]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containers/common/pkg/hooks"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

type annotationFlags map[string]string

func (a annotationFlags) String() string { return fmt.Sprint(map[string]string(a)) }

func (a annotationFlags) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("annotation %q is not KEY=VALUE", kv)
	}
	a[k] = v
	return nil
}

func main() {
	annotations := annotationFlags{}
	flag.Var(annotations, "annotation", "container annotation KEY=VALUE (repeatable)")
	bindMounts := flag.Bool("bind-mounts", false, "the container has bind mounts")
	flag.Parse()

	// The plugin's directories, in the plugin's order (the later one overrides).
	dirs := []string{hooks.DefaultDir, hooks.OverrideDir}
	mgr, err := hooks.New(context.Background(), dirs, []string{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "hooks-probe: hooks.New(%v): %v\n", dirs, err)
		os.Exit(1)
	}
	// The plugin hands Hooks() a spec holding only the process args.
	spec := &rspec.Spec{Process: &rspec.Process{Args: flag.Args()}}
	if _, err := mgr.Hooks(spec, annotations, *bindMounts); err != nil {
		fmt.Fprintf(os.Stderr, "hooks-probe: Hooks: %v\n", err)
		os.Exit(1)
	}
	out := spec.Hooks
	if out == nil {
		out = &rspec.Hooks{}
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "hooks-probe: %v\n", err)
		os.Exit(1)
	}
}
