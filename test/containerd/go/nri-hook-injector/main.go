// nri-hook-injector stands in for containerd/nri's plugins/hook-injector, whose Go module
// the module proxy does not serve (it lives in a nested module of the nri repository). It
// does what that plugin does, with the same libraries: the NRI stub from
// github.com/containerd/nri, hooks.d loading and matching from containers/common pkg/hooks
// on the plugin's default directories, and for each CreateContainer the matching hooks
// added to the container's adjustment. Like the plugin, it watches the directories and
// merges pod annotations over the container's.
//
//	nri-hook-injector [-name NAME] [-idx NN] [-socket PATH]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/containers/common/pkg/hooks"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

type plugin struct {
	mgr *hooks.Manager
}

func (p *plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	annotations := map[string]string{}
	for k, v := range ctr.Annotations {
		annotations[k] = v
	}
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	spec := &rspec.Spec{Process: &rspec.Process{Args: ctr.Args}}
	if _, err := p.mgr.Hooks(spec, annotations, len(ctr.Mounts) > 0); err != nil {
		return nil, nil, fmt.Errorf("hook generation failed: %w", err)
	}
	if spec.Hooks == nil {
		log.Printf("%s/%s: no hooks to inject", pod.Name, ctr.Name)
		return nil, nil, nil
	}
	adjust := &api.ContainerAdjustment{}
	adjust.AddHooks(api.FromOCIHooks(spec.Hooks))
	log.Printf("%s/%s: OCI hooks injected", pod.Name, ctr.Name)
	return adjust, nil, nil
}

func main() {
	name := flag.String("name", "hook-injector", "plugin name to register to NRI")
	idx := flag.String("idx", "10", "plugin index to register to NRI")
	socket := flag.String("socket", "", "NRI socket (default: the stub's, /var/run/nri/nri.sock)")
	flag.Parse()

	opts := []stub.Option{stub.WithPluginName(*name), stub.WithPluginIdx(*idx)}
	if *socket != "" {
		opts = append(opts, stub.WithSocketPath(*socket))
	}
	p := &plugin{}
	s, err := stub.New(p, opts...)
	if err != nil {
		log.Fatalf("failed to create plugin stub: %v", err)
	}

	ctx := context.Background()
	dirs := []string{hooks.DefaultDir, hooks.OverrideDir}
	if p.mgr, err = hooks.New(ctx, dirs, []string{}); err != nil {
		log.Fatalf("failed to set up hook manager: %v", err)
	}
	sync := make(chan error, 2)
	go p.mgr.Monitor(ctx, sync)
	if err := <-sync; err != nil {
		log.Fatalf("failed to monitor hook directories: %v", err)
	}
	log.Printf("watching %v", dirs)

	if err := s.Run(ctx); err != nil {
		log.Printf("plugin exited with error %v", err)
		os.Exit(1)
	}
}
