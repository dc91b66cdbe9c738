package datapath

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// LoadError is a BPF object the kernel refused to load. It names the
// program, the kernel and, for a verifier rejection, the instruction the
// verifier stopped at; the whole verifier log is kept for the artifacts
// ([LoadError.DiagnosticFiles]).
type LoadError struct {
	// Object is the BPF object ("bpf_lxc").
	Object string
	// Program is the program the kernel rejected, "" when the failure is
	// not about one program (a map, a tail-call slot).
	Program string
	// Kernel is the release of the kernel that refused it (uname -r).
	Kernel string
	// Insn is the rejecting instruction as the verifier printed it
	// ("642: (0f) r1 += r2"), "" without a verifier log.
	Insn string
	// Reason is the verifier's last line ("math between pkt pointer and
	// register with unbounded min value is not allowed").
	Reason string
	// Log is the verifier's whole log, nil when it gave none.
	Log []string
	// Err is the loader's error.
	Err error
}

// Error is one line: object, program, kernel, the verifier's reason and
// the rejecting instruction.
func (e *LoadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "load %s", e.Object)
	if e.Program != "" {
		fmt.Fprintf(&b, ": program %s", e.Program)
	}
	if e.Kernel != "" {
		fmt.Fprintf(&b, " on kernel %s", e.Kernel)
	}
	if e.Reason == "" {
		// The loader's error names the program too ("program X: load
		// program: ..."): name it once.
		msg := e.Err.Error()
		if e.Program != "" {
			msg = strings.TrimPrefix(msg, "program "+e.Program+": ")
		}
		fmt.Fprintf(&b, ": %s", msg)
		return b.String()
	}
	fmt.Fprintf(&b, ": verifier: %s", e.Reason)
	if e.Insn != "" {
		fmt.Fprintf(&b, " (at insn %s)", e.Insn)
	}
	return b.String()
}

// Unwrap returns the loader's error.
func (e *LoadError) Unwrap() error { return e.Err }

// LogFile is the name the verifier log gets among the artifacts.
func (e *LoadError) LogFile() string {
	name := e.Program
	if name == "" {
		name = e.Object
	}
	return "verifier-" + name + ".log"
}

// DiagnosticFiles returns the verifier log as a file (name → text), for the
// agent to hand to the host with the error.
func (e *LoadError) DiagnosticFiles() map[string]string {
	if len(e.Log) == 0 {
		return nil
	}
	head := fmt.Sprintf("# %s: program %s on kernel %s\n", e.Object, e.Program, e.Kernel)
	return map[string]string{e.LogFile(): head + strings.Join(e.Log, "\n") + "\n"}
}

// programInErr finds the program cilium/ebpf names in a load error
// ("program hoplab_to_container: load program: ...").
var programInErr = regexp.MustCompile(`program ([A-Za-z_][A-Za-z0-9_]*): `)

// verifierInsn matches an instruction line of a verifier log ("642: (0f)
// r1 += r2").
var verifierInsn = regexp.MustCompile(`^[0-9]+: \([0-9a-f]{2}\)`)

// newLoadError describes err, a failure to load object.
func newLoadError(object string, err error) *LoadError {
	e := &LoadError{Object: object, Err: err, Kernel: kernelRelease()}
	if m := programInErr.FindStringSubmatch(err.Error()); m != nil {
		e.Program = m[1]
	}
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) || len(ve.Log) == 0 {
		return e
	}
	e.Log = ve.Log
	for i := len(ve.Log) - 1; i >= 0; i-- {
		line := strings.TrimSpace(ve.Log[i])
		if line == "" || strings.HasPrefix(line, "processed ") {
			continue
		}
		if e.Reason == "" {
			e.Reason = line
			continue
		}
		if verifierInsn.MatchString(line) {
			e.Insn = line
			break
		}
	}
	return e
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
