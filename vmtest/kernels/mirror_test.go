package kernels

import (
	"strings"
	"testing"
)

func TestMirrorsFromDeb822(t *testing.T) {
	srcs := parseDeb822Sources(`Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://deb.nodesource.example/node_20.x
Suites: nodistro
Components: main
`)
	m := mirrorsFromSources(srcs)
	if m.Debian != "http://mirror.example/debian" || m.Security != "http://mirror.example/debian-security" ||
		m.Keyring != "/usr/share/keyrings/debian-archive-keyring.gpg" {
		t.Errorf("got %+v", m)
	}
	if u, err := m.For("bullseye-security"); err != nil || u != m.Security {
		t.Errorf("security suite: %s, %v", u, err)
	}
	if u, err := m.For("forky"); err != nil || u != m.Debian {
		t.Errorf("main suite: %s, %v", u, err)
	}
}

func TestMirrorsFromOneLineDeriveSecurity(t *testing.T) {
	srcs := parseOneLineSources(`
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main
deb-src http://mirror.example/debian bookworm main
deb https://packages.example/apt cloud-sdk main
`)
	m := mirrorsFromSources(srcs)
	if m.Debian != "http://mirror.example/debian" || m.Security != "http://mirror.example/debian-security" || m.Keyring != "/k.gpg" {
		t.Errorf("got %+v", m)
	}
}

func TestMirrorsMissingNamesTheVariable(t *testing.T) {
	_, err := Mirrors{}.For("trixie")
	if err == nil || !strings.Contains(err.Error(), "HOPLAB_DEBIAN_MIRROR") {
		t.Errorf("got %v", err)
	}
	_, err = Mirrors{}.For("bookworm-security")
	if err == nil || !strings.Contains(err.Error(), "HOPLAB_DEBIAN_SECURITY_MIRROR") {
		t.Errorf("got %v", err)
	}
}

func TestSystemMirrorsEnvOverride(t *testing.T) {
	t.Setenv("HOPLAB_DEBIAN_MIRROR", "http://override.example/debian")
	t.Setenv("HOPLAB_DEBIAN_SECURITY_MIRROR", "http://override.example/sec")
	m := SystemMirrors()
	if m.Debian != "http://override.example/debian" || m.Security != "http://override.example/sec" || m.Keyring == "" {
		t.Errorf("got %+v", m)
	}
}
