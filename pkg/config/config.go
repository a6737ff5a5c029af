// Package config reads a service's typed configuration from OWNYOU_… environment
// variables, prints --help from the same struct tags, and masks secrets when a
// configuration is logged.
//
// A config struct declares each variable once:
//
//	Addr   string `env:"OWNYOU_HTTP_ADDR" envDefault:"127.0.0.1:8080" help:"where the gateway listens"`
//	APIKey string `env:"OWNYOU_LLM_API_KEY" secret:"true" help:"key for the LLM endpoint"`
//
// Nested structs (such as a shared Common block) are walked recursively.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/caarlos0/env/v11"
)

// ErrHelp is returned by Load when the arguments asked for help; the usage has
// already been written and the caller should exit successfully.
var ErrHelp = errors.New("help requested")

// Var describes one environment variable of a config struct.
type Var struct {
	Name    string
	Default string
	Help    string
	Secret  bool
	Value   string
	field   string
}

// Load fills cfg (a pointer to a struct) from the environment. When args holds
// -h, -help or --help it writes the usage of every variable to w and returns
// ErrHelp; an unknown argument is an error.
func Load(cfg any, name string, args []string, w io.Writer) error {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			Usage(w, name, cfg)
			return ErrHelp
		default:
			return fmt.Errorf("%s: unknown argument %q (configuration comes from the environment; see --help)", name, a)
		}
	}
	if err := env.Parse(cfg); err != nil {
		return fmt.Errorf("%s: read config: %w", name, explain(err, cfg))
	}
	return nil
}

// explain names the environment variable behind each field that failed to parse.
func explain(err error, cfg any) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	byField := map[string]string{}
	walk(reflect.ValueOf(cfg), func(v Var) { byField[v.field] = v.Name })
	var msgs []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && byField[pe.Name] != "" {
			msgs = append(msgs, fmt.Sprintf("%s: %v", byField[pe.Name], pe.Err))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Usage writes the list of variables cfg reads, with defaults and help text.
func Usage(w io.Writer, name string, cfgs ...any) {
	fmt.Fprintf(w, "Usage: %s [--help]\n\n%s is configured through environment variables:\n\n", name, name)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tDESCRIPTION")
	for _, v := range Vars(cfgs...) {
		def := v.Default
		if def == "" {
			def = "-"
		}
		help := v.Help
		if v.Secret {
			help += " (secret)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, help)
	}
	tw.Flush()
}

// Vars lists the variables of one or more config structs (values or pointers),
// sorted by name and deduplicated, with their current values.
func Vars(cfgs ...any) []Var {
	seen := map[string]Var{}
	for _, c := range cfgs {
		walk(reflect.ValueOf(c), func(v Var) {
			if _, ok := seen[v.Name]; !ok {
				seen[v.Name] = v
			}
		})
	}
	out := make([]Var, 0, len(seen))
	for _, v := range seen {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LogAttrs returns the effective configuration as slog attributes with every
// secret masked, for the line a service logs at start.
func LogAttrs(cfgs ...any) []any {
	var attrs []any
	for _, v := range Vars(cfgs...) {
		attrs = append(attrs, slog.String(v.Name, Mask(v)))
	}
	return attrs
}

// Mask returns the value to print for v: secrets show only whether they are set.
func Mask(v Var) string {
	if !v.Secret {
		return v.Value
	}
	if v.Value == "" {
		return ""
	}
	if strings.Contains(v.Value, "://") { // a URL: keep scheme and host, hide credentials
		if at := strings.LastIndex(v.Value, "@"); at > 0 {
			scheme := v.Value[:strings.Index(v.Value, "://")+3]
			return scheme + "****@" + v.Value[at+1:]
		}
		return v.Value
	}
	return "****"
}

func walk(rv reflect.Value, fn func(Var)) {
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return
	}
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		name, ok := f.Tag.Lookup("env")
		if !ok {
			if f.Type.Kind() == reflect.Struct || (f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct) {
				walk(rv.Field(i), fn)
			}
			continue
		}
		name = strings.Split(name, ",")[0]
		if name == "-" {
			continue
		}
		fn(Var{
			Name:    name,
			Default: f.Tag.Get("envDefault"),
			Help:    f.Tag.Get("help"),
			Secret:  f.Tag.Get("secret") == "true",
			Value:   fmt.Sprint(rv.Field(i).Interface()),
			field:   f.Name,
		})
	}
}
