package monitoring

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// ruleFile is the part of a Prometheus rule file that this package reads.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

// ruleGroup and rule have every field of the rule format of Prometheus v0.316.0 (model/rulefmt),
// so that strict decoding rejects only misspelt or unsupported fields.
type ruleGroup struct {
	Name        string            `yaml:"name"`
	Interval    string            `yaml:"interval"`
	QueryOffset string            `yaml:"query_offset"`
	Limit       int               `yaml:"limit"`
	Labels      map[string]string `yaml:"labels"`
	Rules       []rule            `yaml:"rules"`
}

// rule is an alerting rule (Alert set) or a recording rule (Record set).
type rule struct {
	Alert         string            `yaml:"alert"`
	Record        string            `yaml:"record"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

func (r rule) source() string {
	if r.Alert != "" {
		return "alert " + r.Alert
	}
	return "recording rule " + r.Record
}

// parseRuleFile decodes a rule file, rejecting fields that Prometheus's rule format does not
// have, and returns its rules in file order. promtool check rules validates the rest.
func parseRuleFile(data []byte) ([]rule, error) {
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	decoder.KnownFields(true)

	var file ruleFile
	if err := decoder.Decode(&file); err != nil {
		return nil, fmt.Errorf("decode rule file: %w", err)
	}

	var rules []rule
	for _, group := range file.Groups {
		rules = append(rules, group.Rules...)
	}
	return rules, nil
}
