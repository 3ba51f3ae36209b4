// Command portable compiles every recstream JSON Schema with a Go validator (Go's regexp is
// RE2: no lookaround, no backreferences) and validates documents against them.
//
// Usage: go run . CASES.json (the format of check_ajv.mjs). Prints one JSON report; exits 1
// on any compile error or unexpected verdict.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

type document struct {
	Schema string `json:"schema"`
	Path   string `json:"path"`
	Valid  bool   `json:"valid"`
}

type cases struct {
	Schemas   map[string]string `json:"schemas"`
	Documents []document        `json:"documents"`
}

type problem struct {
	Kind    string `json:"kind"`
	Schema  string `json:"schema,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var c cases
	if err := json.Unmarshal(raw, &c); err != nil {
		panic(err)
	}
	var problems []problem
	compiled := map[string]*jsonschema.Schema{}
	for name, path := range c.Schemas {
		compiler := jsonschema.NewCompiler() // Go regexp (RE2) for "pattern"
		compiler.AssertFormat()
		s, err := compiler.Compile(path)
		if err != nil {
			problems = append(problems, problem{Kind: "compile", Schema: name, Message: err.Error()})
			continue
		}
		compiled[name] = s
	}
	checked := 0
	for _, d := range c.Documents {
		s, ok := compiled[d.Schema]
		if !ok {
			continue
		}
		f, err := os.Open(d.Path)
		if err != nil {
			panic(err)
		}
		inst, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			problems = append(problems, problem{Kind: "parse", Path: d.Path, Message: err.Error()})
			continue
		}
		checked++
		verr := s.Validate(inst)
		if (verr == nil) != d.Valid {
			msg := "accepted"
			if verr != nil {
				msg = verr.Error()
			}
			problems = append(problems, problem{Kind: "verdict", Path: d.Path, Message: fmt.Sprintf("expected valid=%v: %s", d.Valid, msg)})
		}
	}
	out, _ := json.Marshal(map[string]any{"validator": "github.com/santhosh-tekuri/jsonschema/v6 (RE2)", "schemas": len(compiled), "documents": checked, "problems": problems})
	fmt.Println(string(out))
	if len(problems) > 0 {
		os.Exit(1)
	}
}
