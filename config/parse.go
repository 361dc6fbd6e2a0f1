package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid marks every error caused by the config's content (as opposed to
// failing to read it), so callers can map it to the "bad input" exit code.
var ErrInvalid = errors.New("invalid release config")

// Load reads and parses a config file.
func Load(path string) (*Release, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read release config: %w", err)
	}
	r, err := Parse(b)
	if err != nil {
		return nil, b, fmt.Errorf("%s: %w", path, err)
	}
	return r, b, nil
}

// Parse parses, defaults and validates a config. Every problem found is
// reported at once, each naming its field.
func Parse(b []byte) (*Release, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: the file is empty; start from examples/release.yaml", ErrInvalid)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: not valid YAML: %v", ErrInvalid, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	var errs []error
	errs = append(errs, checkNode("", root, reflect.TypeOf(Release{}))...)
	if root.Kind == yaml.MappingNode && !hasKey(root, "model") {
		errs = append(errs, &FieldError{Path: "model", Msg: "is missing; every release names the candidate model (name, version, sandbox)"})
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	var r Release
	if err := root.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.Defaults()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkNode walks the YAML tree beside the Go type it will decode into, so
// that errors can name the field path rather than a line of yaml.v3 output.
func checkNode(path string, n *yaml.Node, t reflect.Type) []error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			return []error{&FieldError{Path: orRoot(path), Msg: err.Error()}}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return []error{&FieldError{Path: orRoot(path), Msg: fmt.Sprintf("expected a mapping (key: value lines), got %s", describe(n))}}
		}
		fields := yamlFields(t)
		var errs []error
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			p := join(path, key)
			if seen[key] {
				errs = append(errs, &FieldError{Path: p, Msg: "appears twice; keep one"})
				continue
			}
			seen[key] = true
			f, ok := fields[key]
			if !ok {
				errs = append(errs, &FieldError{Path: p, Msg: unknownFieldMsg(key, fields)})
				continue
			}
			errs = append(errs, checkNode(p, val, f.Type)...)
		}
		return errs
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return []error{&FieldError{Path: orRoot(path), Msg: fmt.Sprintf("expected a list, got %s", describe(n))}}
		}
		var errs []error
		for i, c := range n.Content {
			errs = append(errs, checkNode(fmt.Sprintf("%s[%d]", path, i), c, t.Elem())...)
		}
		return errs
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return []error{&FieldError{Path: orRoot(path), Msg: fmt.Sprintf("expected a mapping, got %s", describe(n))}}
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, checkNode(join(path, n.Content[i].Value), n.Content[i+1], t.Elem())...)
		}
		return errs
	default:
		if n.Kind != yaml.ScalarNode {
			return []error{&FieldError{Path: orRoot(path), Msg: fmt.Sprintf("expected %s, got %s", kindName(t), describe(n))}}
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			return []error{&FieldError{Path: orRoot(path), Msg: fmt.Sprintf("expected %s, got %q", kindName(t), n.Value)}}
		}
		return nil
	}
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func unknownFieldMsg(key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	best, bestD := "", 3
	for n := range fields {
		names = append(names, n)
		if d := editDistance(strings.ToLower(key), n); d < bestD {
			best, bestD = n, d
		}
	}
	sort.Strings(names)
	msg := "unknown field"
	if best != "" {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	return msg + " (known: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

// joinErrors keeps every field error and marks the whole as ErrInvalid.
func joinErrors(errs []error) error {
	return &Errors{List: errs}
}

// Errors is every problem found in one config.
type Errors struct{ List []error }

func (e *Errors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid release config (%d problem", len(e.List))
	if len(e.List) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, x := range e.List {
		b.WriteString("\n  - ")
		b.WriteString(x.Error())
	}
	return b.String()
}

func (e *Errors) Unwrap() []error { return append([]error{ErrInvalid}, e.List...) }

// Duration is a time.Duration written as "30s", "5m", "1h30m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"30s\" or \"5m\", got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("expected a duration such as \"30s\" or \"5m\", got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ByteSize is a size written as "512Mi", "1Gi", "64M" or a plain byte count.
type ByteSize int64

// UnmarshalYAML parses Kubernetes-style quantities.
func (s *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as \"512Mi\", got %s", describe(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*s = ByteSize(v)
	return nil
}

// ParseByteSize parses "512Mi", "1Gi", "64M", "1000".
func ParseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			mult, num = u.mult, strings.TrimSuffix(num, u.suffix)
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<50)/mult {
		return 0, fmt.Errorf("expected a size such as \"512Mi\" or \"1Gi\", got %q", s)
	}
	return v * mult, nil
}
