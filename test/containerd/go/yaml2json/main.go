// yaml2json prints the one YAML document of FILE as JSON, so that the tests can read the
// shipped Kubernetes manifests with jq. A file with more than one document is an error:
// the tests would otherwise read only part of it.
//
//	yaml2json FILE
package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"

	"sigs.k8s.io/yaml"
)

var separator = regexp.MustCompile(`(?m)^---\s*$`)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: yaml2json FILE")
		os.Exit(2)
	}
	in, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "yaml2json: %v\n", err)
		os.Exit(1)
	}
	docs := 0
	for _, d := range separator.Split(string(in), -1) {
		if len(bytes.TrimSpace(stripComments([]byte(d)))) > 0 {
			docs++
		}
	}
	if docs != 1 {
		fmt.Fprintf(os.Stderr, "yaml2json: %s holds %d YAML documents, want 1\n", os.Args[1], docs)
		os.Exit(1)
	}
	out, err := yaml.YAMLToJSON(in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "yaml2json: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

var comment = regexp.MustCompile(`(?m)^\s*#.*$`)

func stripComments(b []byte) []byte { return comment.ReplaceAll(b, nil) }
