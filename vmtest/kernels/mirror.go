package kernels

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoMirror is returned when no Debian archive URL is known.
var ErrNoMirror = errors.New("no Debian mirror configured")

// DefaultKeyring is the keyring apt verifies Debian's archives with.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// Mirrors holds the base URLs of the Debian archives kernels come from.
type Mirrors struct {
	// Debian is the main archive base URL (the one serving dists/trixie).
	Debian string
	// Security is the security archive base URL (serving dists/*-security).
	Security string
	// Keyring is the keyring file apt uses to verify these archives.
	Keyring string
}

// For returns the base URL serving suite.
func (m Mirrors) For(suite string) (string, error) {
	base := m.Debian
	name := "HOPLAB_DEBIAN_MIRROR"
	if strings.HasSuffix(suite, "-security") {
		base, name = m.Security, "HOPLAB_DEBIAN_SECURITY_MIRROR"
	}
	if base == "" {
		return "", fmt.Errorf("%w for suite %s: add a Debian archive to /etc/apt/sources.list.d or set %s", ErrNoMirror, suite, name)
	}
	return strings.TrimRight(base, "/"), nil
}

// SystemMirrors derives the Debian archive URLs from the host's apt sources
// (/etc/apt/sources.list and /etc/apt/sources.list.d/*.list|*.sources), so
// no mirror host is baked into hoplab. HOPLAB_DEBIAN_MIRROR and
// HOPLAB_DEBIAN_SECURITY_MIRROR override what is found.
func SystemMirrors() Mirrors {
	var srcs []aptSource
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.HasSuffix(f, ".sources") {
			srcs = append(srcs, parseDeb822Sources(string(data))...)
		} else {
			srcs = append(srcs, parseOneLineSources(string(data))...)
		}
	}
	m := mirrorsFromSources(srcs)
	if v := os.Getenv("HOPLAB_DEBIAN_MIRROR"); v != "" {
		m.Debian = v
	}
	if v := os.Getenv("HOPLAB_DEBIAN_SECURITY_MIRROR"); v != "" {
		m.Security = v
	}
	if m.Keyring == "" {
		m.Keyring = DefaultKeyring
	}
	return m
}

// aptSource is one "deb" source: a URI, its suites and its keyring.
type aptSource struct {
	uri      string
	suites   []string
	signedBy string
}

// mirrorsFromSources picks the Debian and Debian security archives out of
// the host's sources. The security archive, when absent, is derived from the
// main one (…/debian → …/debian-security on the same host).
func mirrorsFromSources(srcs []aptSource) Mirrors {
	var m Mirrors
	for _, s := range srcs {
		u, err := url.Parse(s.uri)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		last := strings.TrimRight(u.Path, "/")
		last = last[strings.LastIndex(last, "/")+1:]
		security := last == "debian-security"
		for _, suite := range s.suites {
			if strings.HasSuffix(suite, "-security") {
				security = true
			}
		}
		switch {
		case security && m.Security == "":
			m.Security = strings.TrimRight(s.uri, "/")
		case !security && last == "debian" && m.Debian == "":
			m.Debian = strings.TrimRight(s.uri, "/")
		default:
			continue
		}
		if m.Keyring == "" && strings.HasPrefix(s.signedBy, "/") {
			m.Keyring = s.signedBy
		}
	}
	if m.Security == "" && m.Debian != "" {
		m.Security = m.Debian + "-security"
	}
	return m
}

// parseOneLineSources reads the classic "deb [opts] URI suite comp…" format.
func parseOneLineSources(text string) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		var s aptSource
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 {
				opt := strings.Trim(f[0], "[]")
				if v, ok := strings.CutPrefix(opt, "signed-by="); ok {
					s.signedBy = v
				}
				done := strings.HasSuffix(f[0], "]")
				f = f[1:]
				if done {
					break
				}
			}
		}
		if len(f) < 2 {
			continue
		}
		s.uri, s.suites = f[0], []string{f[1]}
		out = append(out, s)
	}
	return out
}

// parseDeb822Sources reads the deb822 ".sources" format.
func parseDeb822Sources(text string) []aptSource {
	var out []aptSource
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		var last string
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if line[0] == ' ' || line[0] == '\t' {
				if last != "" {
					fields[last] += "\n" + strings.TrimSpace(line)
				}
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if !strings.Contains(" "+fields["types"]+" ", " deb ") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, aptSource{uri: uri, suites: strings.Fields(fields["suites"]), signedBy: strings.TrimSpace(fields["signed-by"])})
		}
	}
	return out
}
