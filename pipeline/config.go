package pipeline

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts the environment variable of every setting.
const EnvPrefix = "CYCLEGAN_"

// redacted replaces a secret wherever a setting is shown.
const redacted = "REDACTED"

// EnvName returns the environment variable read for a flag: nats-url gives
// CYCLEGAN_NATS_URL.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// SettingError describes a flag or environment value that breaks its rule.
// errors.Is(err, ErrInvalidSetting) holds for it.
type SettingError struct {
	Flag    string // flag name without dashes
	Env     string // environment variable of the flag
	Value   string // the value as given, or REDACTED for a secret
	FromEnv bool   // whether the value came from Env rather than the command line
	Err     error  // the rule that failed
}

func (e *SettingError) Error() string {
	if e.FromEnv {
		return fmt.Sprintf("invalid value %q for --%s from environment variable %s: %v", e.Value, e.Flag, e.Env, e.Err)
	}
	return fmt.Sprintf("invalid value %q for flag --%s: %v", e.Value, e.Flag, e.Err)
}

// Unwrap returns ErrInvalidSetting and the rule's error.
func (e *SettingError) Unwrap() []error { return []error{ErrInvalidSetting, e.Err} }

// FlagSet declares a program's settings. Every setting is a flag and an
// environment variable (see EnvName). Parse applies, from lowest to highest
// precedence, the default, the environment variable and the flag, and checks
// each value against its rule.
//
// A registration method takes a pointer whose current value is the default,
// so a config struct filled with its defaults registers itself.
type FlagSet struct {
	program   string
	flags     *flag.FlagSet
	lookupEnv func(string) (string, bool)
	settings  []*setting
	checks    []func() error
	failed    *SettingError // set by a flag's Set during flags.Parse
}

type setting struct {
	name, env string
	usage     string
	detail    string // "unit: …", "format: …" or "values: …" in the help text
	def       string // default, formatted as the flag accepts it
	value     flag.Value
	show      func(string) string // formats a raw value for logs and errors
}

// NewFlagSet returns an empty FlagSet for program. lookupEnv reads the
// environment; nil means os.LookupEnv.
func NewFlagSet(program string, lookupEnv func(string) (string, bool)) *FlagSet {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &FlagSet{program: program, flags: fs, lookupEnv: lookupEnv}
}

// String declares a string setting. check, if not nil, validates each value.
func (f *FlagSet) String(p *string, name, usage string, check func(string) error) {
	f.add(name, "", usage, showPlain, &value[string]{p: p, parse: parseString, format: formatString, check: check})
}

// Secret declares a string setting whose value is never shown: logs, help
// and errors print REDACTED in its place.
func (f *FlagSet) Secret(p *string, name, usage string) {
	f.add(name, "", usage, showSecret, &value[string]{p: p, parse: parseString, format: formatString})
}

// List declares a comma-separated list. Blanks around items are dropped, and
// check, if not nil, validates each item. show, if not nil, formats the raw
// value for logs and errors (for example to hide passwords in URLs).
func (f *FlagSet) List(p *[]string, name, usage string, check func(string) error, show func(string) string) {
	if show == nil {
		show = showPlain
	}
	v := &value[[]string]{p: p, parse: parseList, format: formatList, check: func(items []string) error {
		if check == nil {
			return nil
		}
		for _, item := range items {
			if err := check(item); err != nil {
				return err
			}
		}
		return nil
	}}
	f.add(name, "format: comma-separated list", usage, show, v)
}

// Int declares an integer setting measured in unit (empty for a count).
func (f *FlagSet) Int(p *int, name, unit, usage string, check func(int) error) {
	f.add(name, unitDetail(unit), usage, showPlain, &value[int]{p: p, parse: parseInt, format: strconv.Itoa, check: check})
}

// Bytes declares a size in bytes. Values are whole numbers with an optional
// KiB, MiB, GiB or TiB suffix; negative sizes are rejected.
func (f *FlagSet) Bytes(p *int64, name, usage string, check func(int64) error) {
	f.add(name, "unit: bytes, or a number with a KiB, MiB, GiB or TiB suffix", usage, showPlain, &value[int64]{p: p, parse: parseBytes, format: formatBytes, check: check})
}

// Duration declares a duration such as 500ms, 30s or 2m.
func (f *FlagSet) Duration(p *time.Duration, name, usage string, check func(time.Duration) error) {
	f.add(name, "unit: duration with its unit, such as 500ms, 30s or 2m", usage, showPlain, &value[time.Duration]{p: p, parse: parseDuration, format: time.Duration.String, check: check})
}

// Float declares a floating-point setting measured in unit.
func (f *FlagSet) Float(p *float64, name, unit, usage string, check func(float64) error) {
	f.add(name, unitDetail(unit), usage, showPlain, &value[float64]{p: p, parse: parseFloat, format: formatFloat, check: check})
}

// Bool declares a switch: --name, --name=false, or true/false/1/0 in the
// environment.
func (f *FlagSet) Bool(p *bool, name, usage string) {
	f.add(name, "", usage, showPlain, boolValue{&value[bool]{p: p, parse: parseBool, format: strconv.FormatBool}})
}

// LogLevel declares a log level: debug, info, warn or error.
func (f *FlagSet) LogLevel(p *slog.Level, name, usage string) {
	f.add(name, "values: debug, info, warn, error", usage, showPlain, &value[slog.Level]{p: p, parse: parseLogLevel, format: formatLogLevel})
}

// Check adds a rule across settings, run by Parse after all values are set.
// Its error should name the flags involved.
func (f *FlagSet) Check(check func() error) {
	f.checks = append(f.checks, check)
}

func unitDetail(unit string) string {
	if unit == "" {
		return ""
	}
	return "unit: " + unit
}

func (f *FlagSet) add(name, detail, usage string, show func(string) string, v flag.Value) {
	s := &setting{name: name, env: EnvName(name), detail: detail, usage: usage, def: v.String(), value: v, show: show}
	f.settings = append(f.settings, s)
	f.flags.Var(trackedValue{s: s, set: f}, name, usage)
}

// Parse sets every declared setting from the environment, then from args,
// then runs the cross-setting checks. It returns flag.ErrHelp for -h or
// --help (the caller prints PrintUsage and exits with status 0), a
// *SettingError for a value that breaks its rule, and an error wrapping
// ErrInvalidSetting for an unknown flag or a failed check.
func (f *FlagSet) Parse(args []string) error {
	for _, s := range f.settings {
		raw, ok := f.lookupEnv(s.env)
		if !ok {
			continue
		}
		if err := s.value.Set(raw); err != nil {
			return &SettingError{Flag: s.name, Env: s.env, Value: s.show(raw), FromEnv: true, Err: err}
		}
	}

	f.failed = nil
	if err := f.flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		if f.failed != nil {
			return f.failed
		}
		return fmt.Errorf("%w: %v (run with --help for the list of flags)", ErrInvalidSetting, err)
	}

	for _, check := range f.checks {
		if err := check(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidSetting, err)
		}
	}
	return nil
}

// Args returns the arguments left after the flags.
func (f *FlagSet) Args() []string { return f.flags.Args() }

// PrintUsage writes the help text: each flag with its unit, default and
// environment variable.
func (f *FlagSet) PrintUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", f.program)
	fmt.Fprintf(w, "Each flag can also be set by the environment variable shown with it.\n")
	fmt.Fprintf(w, "A flag given on the command line overrides the variable, which overrides the default.\n\n")
	for _, s := range f.settings {
		fmt.Fprintf(w, "  --%s\n", s.name)
		var details []string
		if s.detail != "" {
			details = append(details, s.detail)
		}
		def := s.show(s.def)
		if def == "" {
			def = "none"
		}
		details = append(details, "default: "+def, "env: "+s.env)
		fmt.Fprintf(w, "        %s (%s)\n", s.usage, strings.Join(details, "; "))
	}
}

// LogValue returns every setting by flag name, with secrets redacted, for the
// start-up log line.
func (f *FlagSet) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(f.settings))
	for _, s := range f.settings {
		attrs = append(attrs, slog.String(s.name, s.show(s.value.String())))
	}
	return slog.GroupValue(attrs...)
}

// AtLeast returns a check that rejects values below minimum.
func AtLeast[T cmp.Ordered](minimum T) func(T) error {
	return func(v T) error {
		if v < minimum {
			return fmt.Errorf("must be at least %v", minimum)
		}
		return nil
	}
}

// OneOf returns a check that accepts only the given values.
func OneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

// trackedValue records the SettingError of a failed flag, because the flag
// package flattens errors into text.
type trackedValue struct {
	s   *setting
	set *FlagSet
}

func (t trackedValue) String() string {
	if t.s == nil {
		return ""
	}
	return t.s.value.String()
}

func (t trackedValue) Set(raw string) error {
	if err := t.s.value.Set(raw); err != nil {
		t.set.failed = &SettingError{Flag: t.s.name, Env: t.s.env, Value: t.s.show(raw), Err: err}
		return err
	}
	return nil
}

func (t trackedValue) IsBoolFlag() bool {
	b, ok := t.s.value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// value is a flag.Value of type T with a parser, a formatter and a rule.
type value[T any] struct {
	p      *T
	parse  func(string) (T, error)
	format func(T) string
	check  func(T) error
}

func (v *value[T]) Set(raw string) error {
	x, err := v.parse(raw)
	if err != nil {
		return err
	}
	if v.check != nil {
		if err := v.check(x); err != nil {
			return err
		}
	}
	*v.p = x
	return nil
}

func (v *value[T]) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return v.format(*v.p)
}

type boolValue struct{ *value[bool] }

func (boolValue) IsBoolFlag() bool { return true }

func showPlain(raw string) string { return raw }

func showSecret(raw string) string {
	if raw == "" {
		return ""
	}
	return redacted
}

func parseString(raw string) (string, error) { return raw, nil }
func formatString(s string) string           { return s }

func parseList(raw string) ([]string, error) {
	var items []string
	for item := range strings.SplitSeq(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items, nil
}

func formatList(items []string) string { return strings.Join(items, ",") }

func parseInt(raw string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return 0, errors.New("must be a whole number")
	}
	return n, nil
}

func parseFloat(raw string) (float64, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil {
		return 0, errors.New("must be a number")
	}
	return x, nil
}

func formatFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func parseBool(raw string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(raw))
	if err != nil {
		return false, errors.New("must be true or false")
	}
	return b, nil
}

func parseDuration(raw string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil {
		return 0, errors.New("must be a duration such as 500ms, 30s or 2m")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"TiB", 1 << 40},
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
	{"B", 1},
}

func parseBytes(raw string) (int64, error) {
	s := strings.TrimSpace(raw)
	multiplier := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, multiplier = strings.TrimSpace(rest), u.size
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("must be a whole number of bytes with an optional KiB, MiB, GiB or TiB suffix")
	}
	if n < 0 {
		return 0, errors.New("must not be negative")
	}
	if n > (1<<63-1)/multiplier {
		return 0, errors.New("is too large")
	}
	return n * multiplier, nil
}

func formatBytes(n int64) string {
	for _, u := range byteUnits {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func parseLogLevel(raw string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("must be debug, info, warn or error")
}

func formatLogLevel(l slog.Level) string { return strings.ToLower(l.String()) }
