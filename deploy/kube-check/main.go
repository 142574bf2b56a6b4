// kube-check validates rendered Kubernetes manifests offline and strictly: each object against
// the schema of its kind from the Kubernetes API's published OpenAPI v3 documents (the
// k8s.io/kubernetes module's api/openapi-spec/v3) or a CustomResourceDefinition's openAPIV3Schema
// (KEDA's, from its module's config/crd/bases). Strict means: an unknown field anywhere fails
// (every object schema without additionalProperties or x-kubernetes-preserve-unknown-fields is
// closed), as do a wrong type and a missing required field. Unknown kinds fail too.
//
// Usage: kube-check -schemas DIR [manifest.yaml ...]   (stdin when no file is given)
// DIR holds *_openapi.json (Kubernetes) and *.yaml CRDs. Exit 0: every object valid; 1: not.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

type gvk struct{ group, version, kind string }

func (g gvk) String() string {
	if g.group == "" {
		return g.version + "/" + g.kind
	}
	return g.group + "/" + g.version + "/" + g.kind
}

// closeObjects makes a schema strict: every object with properties and no say on extra fields
// gets additionalProperties: false (x-kubernetes-preserve-unknown-fields keeps it open).
func closeObjects(node any) {
	switch n := node.(type) {
	case map[string]any:
		_, hasProps := n["properties"]
		_, hasAdditional := n["additionalProperties"]
		preserve, _ := n["x-kubernetes-preserve-unknown-fields"].(bool)
		if hasProps && !hasAdditional && !preserve {
			n["additionalProperties"] = false
		}
		for _, v := range n {
			closeObjects(v)
		}
	case []any:
		for _, v := range n {
			closeObjects(v)
		}
	}
}

type registry struct {
	compiler *jsonschema.Compiler
	refs     map[gvk]string
}

func loadSchemas(dir string) (*registry, error) {
	r := &registry{compiler: jsonschema.NewCompiler(), refs: map[gvk]string{}}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasSuffix(f, "_openapi.json"):
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			comps, _ := doc["components"].(map[string]any)
			schemas, _ := comps["schemas"].(map[string]any)
			for name, s := range schemas {
				sm, _ := s.(map[string]any)
				kinds, _ := sm["x-kubernetes-group-version-kind"].([]any)
				for _, k := range kinds {
					km, _ := k.(map[string]any)
					g := gvk{fmt.Sprint(km["group"]), fmt.Sprint(km["version"]), fmt.Sprint(km["kind"])}
					if _, seen := r.refs[g]; !seen {
						r.refs[g] = "file://" + f + "#/components/schemas/" + strings.ReplaceAll(name, "/", "~1")
					}
				}
			}
			closeObjects(doc)
			if err := r.compiler.AddResource("file://"+f, doc); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
		case strings.HasSuffix(f, ".yaml"):
			var crd struct {
				Spec struct {
					Group string `json:"group"`
					Names struct {
						Kind string `json:"kind"`
					} `json:"names"`
					Versions []struct {
						Name   string `json:"name"`
						Schema struct {
							OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
						} `json:"schema"`
					} `json:"versions"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal(raw, &crd); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			for _, v := range crd.Spec.Versions {
				s := v.Schema.OpenAPIV3Schema
				closeObjects(s)
				// Its metadata is the API's ObjectMeta, which the CRD leaves open.
				if props, ok := s["properties"].(map[string]any); ok {
					props["metadata"] = map[string]any{"type": "object"}
				}
				url := fmt.Sprintf("file://%s.%s.json", f, v.Name)
				if err := r.compiler.AddResource(url, s); err != nil {
					return nil, fmt.Errorf("%s: %w", f, err)
				}
				r.refs[gvk{crd.Spec.Group, v.Name, crd.Spec.Names.Kind}] = url
			}
		}
	}
	return r, nil
}

// splitDocs cuts a multi-document YAML stream at its "---" lines, dropping documents that hold
// only comments or nothing (helm template leaves such between files).
func splitDocs(data []byte) [][]byte {
	var out [][]byte
	for _, part := range bytes.Split(data, []byte("\n---")) {
		for _, l := range bytes.Split(part, []byte("\n")) {
			if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
				out = append(out, bytes.TrimSpace(part))
				break
			}
		}
	}
	return out
}

func main() {
	dir := flag.String("schemas", "", "folder of Kubernetes OpenAPI v3 documents and CRDs")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "kube-check: -schemas DIR is required")
		os.Exit(2)
	}
	reg, err := loadSchemas(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube-check:", err)
		os.Exit(2)
	}
	var inputs []string
	if flag.NArg() == 0 {
		inputs = []string{"-"}
	} else {
		inputs = flag.Args()
	}
	compiled := map[string]*jsonschema.Schema{}
	bad, count := 0, 0
	for _, in := range inputs {
		var data []byte
		if in == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(in)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kube-check:", err)
			os.Exit(2)
		}
		for _, doc := range splitDocs(data) {
			count++
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				fmt.Printf("%s: not YAML: %v\n", in, err)
				bad++
				continue
			}
			var obj map[string]any
			if err := json.Unmarshal(js, &obj); err != nil || obj == nil {
				fmt.Printf("%s: not an object\n", in)
				bad++
				continue
			}
			apiVersion, _ := obj["apiVersion"].(string)
			kind, _ := obj["kind"].(string)
			meta, _ := obj["metadata"].(map[string]any)
			name := fmt.Sprint(meta["name"])
			group, version := "", apiVersion
			if i := strings.Index(apiVersion, "/"); i >= 0 {
				group, version = apiVersion[:i], apiVersion[i+1:]
			}
			g := gvk{group, version, kind}
			ref, ok := reg.refs[g]
			if !ok {
				fmt.Printf("%s %s: no schema for this kind\n", g, name)
				bad++
				continue
			}
			sch := compiled[ref]
			if sch == nil {
				if sch, err = reg.compiler.Compile(ref); err != nil {
					fmt.Fprintln(os.Stderr, "kube-check: compiling", ref, err)
					os.Exit(2)
				}
				compiled[ref] = sch
			}
			var inst any
			if err := json.Unmarshal(js, &inst); err != nil {
				fmt.Printf("%s %s: %v\n", g, name, err)
				bad++
				continue
			}
			if err := sch.Validate(inst); err != nil {
				fmt.Printf("%s %s: %v\n", g, name, err)
				bad++
				continue
			}
			fmt.Printf("%s %s: valid\n", g, name)
		}
	}
	fmt.Printf("%d objects, %d invalid\n", count, bad)
	if bad > 0 || count == 0 {
		os.Exit(1)
	}
}
