package vmtest

import (
	"bufio"
	"net"
	"regexp"
	"strings"
	"sync"
)

func (vm *VM) readConsole(c net.Conn) {
	defer close(vm.consoleDone)
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			vm.consoleFile.WriteString(line)
			l := ansiEscape.ReplaceAllString(strings.TrimRight(line, "\r\n"), "")
			vm.console.add(l)
			if vm.trouble.len() > 0 && vm.trouble.len() < vm.trouble.max {
				vm.trouble.add(l)
			} else if vm.trouble.len() == 0 && kernelTrouble.MatchString(l) {
				vm.trouble.add(l)
			}
			if vm.opts.ConsoleLine != nil {
				vm.opts.ConsoleLine(l)
			}
		}
		if err != nil {
			return
		}
	}
}

// tail keeps the last lines of a stream.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(l string) {
	t.mu.Lock()
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
	t.mu.Unlock()
}

// String returns the kept lines.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// ansiEscape matches the terminal control sequences firmware writes on the
// serial console.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[A-Za-z=>])`)

// kernelTrouble matches the console line that starts a kernel failure report.
var kernelTrouble = regexp.MustCompile(`Kernel panic|BUG:|Oops|general protection fault|double fault|Unable to handle`)

func (t *tail) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.lines)
}
