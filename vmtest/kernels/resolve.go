package kernels

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// AptResolver resolves the newest kernel packages of a series with apt,
// using a throw-away sources list, state and cache in a temporary directory
// (the host's apt configuration is not touched). apt verifies the archive's
// signatures with Mirrors.Keyring, so the sha256 values it returns are as
// trustworthy as the ones in the checked-in lock.
type AptResolver struct {
	// Mirrors are the archives to ask.
	Mirrors Mirrors
	// Logger receives progress; default slog.Default().
	Logger *slog.Logger
}

// Resolve implements Resolver.
func (a *AptResolver) Resolve(ctx context.Context, pinned Entry) (Entry, error) {
	log := a.Logger
	if log == nil {
		log = slog.Default()
	}
	base, err := a.Mirrors.For(pinned.Suite)
	if err != nil {
		return Entry{}, err
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return Entry{}, fmt.Errorf("resolving kernel packages needs apt-get (Debian/Ubuntu): %w", err)
	}
	tmp, err := os.MkdirTemp("", "hoplab-apt-")
	if err != nil {
		return Entry{}, fmt.Errorf("apt resolver: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return Entry{}, fmt.Errorf("apt resolver: %w", err)
		}
	}
	keyring := a.Mirrors.Keyring
	if keyring == "" {
		keyring = DefaultKeyring
	}
	src := fmt.Sprintf("deb [arch=amd64 signed-by=%s] %s %s main\n", keyring, base, pinned.Suite)
	if err := os.WriteFile(filepath.Join(tmp, "sources.list"), []byte(src), 0o644); err != nil {
		return Entry{}, fmt.Errorf("apt resolver: %w", err)
	}
	aptOpts := []string{
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(tmp, "sources.list"),
		"-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(tmp, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(tmp, "cache"),
		"-o", "APT::Architecture=amd64",
		"-o", "Acquire::Languages=none",
		"-o", "Debug::NoLocking=1",
	}
	log.Info("resolving kernel packages with apt", "kernel", pinned.Key(), "suite", pinned.Suite)
	if out, err := exec.CommandContext(ctx, "apt-get", append(aptOpts, "-q", "update")...).CombinedOutput(); err != nil {
		return Entry{}, fmt.Errorf("apt-get update (%s %s): %w: %s", base, pinned.Suite, err, tail(out))
	}
	out, err := exec.CommandContext(ctx, "apt-cache", append(aptOpts, "dumpavail")...).Output()
	if err != nil {
		return Entry{}, fmt.Errorf("apt-cache dumpavail: %w", err)
	}
	return NewestEntry(pinned, ParsePackages(out))
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 400 {
		s = "…" + s[len(s)-400:]
	}
	return s
}

// ParsePackages parses a Debian Packages index (or apt-cache dumpavail
// output) into packages. Stanzas without a Filename or SHA256 are skipped;
// Role is left empty.
func ParsePackages(index []byte) []Package {
	var out []Package
	for _, stanza := range bytes.Split(bytes.ReplaceAll(index, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
		var p Package
		for _, line := range strings.Split(string(stanza), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, " ") {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Package":
				p.Name = v
			case "Version":
				p.Version = v
			case "Filename":
				p.Filename = v
			case "Size":
				p.Size, _ = strconv.ParseInt(v, 10, 64)
			case "SHA256":
				p.SHA256 = strings.ToLower(v)
			}
		}
		if p.Name != "" && p.Filename != "" && p.SHA256 != "" {
			out = append(out, p)
		}
	}
	return out
}

// rolePrefixes are the package name prefixes of each role; the rest of the
// name is the kernel release.
var rolePrefixes = map[string][]string{
	RoleImage:   {"linux-image-", "linux-binary-"},
	RoleModules: {"linux-modules-"},
}

// splitPackageName returns the prefix and release of a kernel package name
// ("linux-image-6.1.0-56-cloud-amd64" → "linux-image-", "6.1.0-56-cloud-amd64").
func splitPackageName(role, name string) (prefix, release string, ok bool) {
	for _, p := range rolePrefixes[role] {
		if r, found := strings.CutPrefix(name, p); found {
			return p, r, true
		}
	}
	return "", "", false
}

// releasePattern matches the releases of series in flavour:
// 6.1 cloud → 6.1.0-56-cloud-amd64, 6.12 generic → 6.12.107+deb13-amd64.
func releasePattern(series, flavour string) *regexp.Regexp {
	fl := ""
	if flavour == FlavourCloud {
		fl = "cloud-"
	}
	return regexp.MustCompile(`^` + regexp.QuoteMeta(series) + `\.[0-9]+(-[0-9]+)?(\+deb[0-9]+)?-` + fl + `amd64$`)
}

// NewestEntry picks, from an archive's packages, the newest kernel of
// pinned's series and flavour and returns it as an entry in pinned's suite
// with the same package roles. An entry no newer than pinned is returned
// as-is (the pin is current).
func NewestEntry(pinned Entry, avail []Package) (Entry, error) {
	var img Package
	for _, p := range pinned.Packages {
		if p.Role == RoleImage {
			img = p
		}
	}
	prefix, _, ok := splitPackageName(RoleImage, img.Name)
	if !ok {
		return Entry{}, fmt.Errorf("resolve %s: cannot tell the release from package %q", pinned.Key(), img.Name)
	}
	re := releasePattern(pinned.Series, pinned.Flavour)
	byName := map[string]Package{}
	for _, p := range avail {
		if old, dup := byName[p.Name]; !dup || CompareVersions(p.Version, old.Version) > 0 {
			byName[p.Name] = p
		}
	}
	var best Package
	var bestRelease string
	for name, p := range byName {
		r, found := strings.CutPrefix(name, prefix)
		if !found || !re.MatchString(r) {
			continue
		}
		if bestRelease == "" || CompareVersions(p.Version, best.Version) > 0 ||
			(CompareVersions(p.Version, best.Version) == 0 && CompareVersions(r, bestRelease) > 0) {
			best, bestRelease = p, r
		}
	}
	if bestRelease == "" {
		return Entry{}, fmt.Errorf("resolve %s: no %s%s package in %s", pinned.Key(), prefix, re.String(), pinned.Suite)
	}
	out := Entry{Series: pinned.Series, Flavour: pinned.Flavour, Suite: pinned.Suite, Release: bestRelease}
	for _, p := range pinned.Packages {
		name := prefix + bestRelease
		if p.Role != RoleImage {
			pre, _, ok := splitPackageName(p.Role, p.Name)
			if !ok {
				return Entry{}, fmt.Errorf("resolve %s: cannot tell the release from package %q", pinned.Key(), p.Name)
			}
			name = pre + bestRelease
		}
		np, ok := byName[name]
		if !ok {
			return Entry{}, fmt.Errorf("resolve %s: %s is in %s but %s is not", pinned.Key(), prefix+bestRelease, pinned.Suite, name)
		}
		np.Role = p.Role
		out.Packages = append(out.Packages, np)
	}
	if err := out.Validate(); err != nil {
		return Entry{}, fmt.Errorf("resolve %s: %w", pinned.Key(), err)
	}
	return out, nil
}

// CompareVersions compares two Debian package versions
// ([epoch:]upstream[-revision]) the way dpkg does, returning -1, 0 or 1.
func CompareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := compareVersionPart(ua, ub); c != 0 {
		return c
	}
	return compareVersionPart(ra, rb)
}

func splitVersion(v string) (epoch int, upstream, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		epoch, _ = strconv.Atoi(e)
		v = rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// charOrder ranks a character in dpkg's non-digit comparison: '~' sorts
// before everything (even the end of the string), letters before other
// characters.
func charOrder(c byte) int {
	switch {
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		return int(c)
	default:
		return int(c) + 256
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// compareVersionPart compares alternating non-digit and digit runs.
func compareVersionPart(a, b string) int {
	for a != "" || b != "" {
		// Non-digit prefix, character by character.
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			var ca, cb int
			if a != "" && !isDigit(a[0]) {
				ca = charOrder(a[0])
			}
			if b != "" && !isDigit(b[0]) {
				cb = charOrder(b[0])
			}
			if ca != cb {
				if ca < cb {
					return -1
				}
				return 1
			}
			if a != "" && !isDigit(a[0]) {
				a = a[1:]
			}
			if b != "" && !isDigit(b[0]) {
				b = b[1:]
			}
		}
		// Digit run, numerically.
		var na, nb string
		for a != "" && isDigit(a[0]) {
			na, a = na+a[:1], a[1:]
		}
		for b != "" && isDigit(b[0]) {
			nb, b = nb+b[:1], b[1:]
		}
		na, nb = strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
		if len(na) != len(nb) {
			if len(na) < len(nb) {
				return -1
			}
			return 1
		}
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
	}
	return 0
}
