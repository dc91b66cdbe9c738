package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

func (vm *VM) onEvent(m *control.Message) {
	vm.agentMu.Lock()
	if vm.agentLog != nil {
		b, _ := json.Marshal(struct {
			T time.Time `json:"t"`
			*control.Message
		}{time.Now(), m})
		vm.agentLog.Write(append(b, '\n'))
	}
	vm.agentMu.Unlock()
	switch m.Event {
	case control.EventReady:
		var r control.Ready
		if control.Unmarshal(m.Data, &r) == nil {
			vm.readyOnce.Do(func() { vm.readyCh <- r })
		}
		vm.agentTail.add("ready " + string(m.Data))
	case control.EventLog:
		var l control.Log
		_ = control.Unmarshal(m.Data, &l)
		vm.agentTail.add(l.Level + " " + l.Msg)
		vm.log.Debug("agent", "level", l.Level, "msg", l.Msg)
	case control.EventFatal:
		var f control.Fatal
		_ = control.Unmarshal(m.Data, &f)
		vm.agentTail.add("FATAL " + f.Error)
		select {
		case vm.fatalCh <- f.Error:
		default:
		}
	default:
		vm.agentTail.add(m.Event + " " + string(m.Data))
	}
}

func (vm *VM) waitReady(ctx context.Context) error {
	t := time.NewTimer(vm.opts.ReadyTimeout)
	defer t.Stop()
	select {
	case r := <-vm.readyCh:
		vm.ready = r
		vm.readyAt = time.Since(vm.start)
		vm.log.Info("agent ready", "kernel", r.Release, "since_qemu_start", vm.readyAt.Round(time.Millisecond),
			"uptime", r.Uptime.Round(time.Millisecond), "handover_to_ready", r.HandoverToReady().Round(time.Millisecond))
		return nil
	case msg := <-vm.fatalCh:
		return vm.fail(fmt.Errorf("%w: %s", ErrGuestFatal, msg))
	case <-vm.exited:
		// A fatal agent powers off right after saying why: prefer its word.
		select {
		case msg := <-vm.fatalCh:
			return vm.fail(fmt.Errorf("%w: %s", ErrGuestFatal, msg))
		case <-time.After(100 * time.Millisecond):
		}
		return vm.fail(fmt.Errorf("%w before the agent was ready: %v", ErrExited, vm.exitErr))
	case <-t.C:
		return vm.fail(fmt.Errorf("%w: no ready event after %v", ErrNotReady, vm.opts.ReadyTimeout))
	case <-ctx.Done():
		return vm.fail(fmt.Errorf("wait for agent: %w", ctx.Err()))
	}
}

// Call calls an agent method. Its errors start with the method's name (see
// control.Client.Call); when QEMU has exited the error wraps a [*VMError]
// with the console tail ("exec: vm node1: qemu exited: ...").
func (vm *VM) Call(ctx context.Context, method string, params, result any) error {
	err := vm.agent.Call(ctx, method, params, result)
	if err != nil && errors.Is(err, control.ErrClosed) {
		select {
		case <-vm.exited:
		case <-time.After(time.Second):
		}
		if e := vm.Err(); e != nil {
			return fmt.Errorf("%s: %w", method, e)
		}
	}
	return err
}

// Exec runs a command in the guest.
func (vm *VM) Exec(ctx context.Context, argv ...string) (control.ExecResult, error) {
	var r control.ExecResult
	err := vm.Call(ctx, control.MethodExec, control.Exec{Argv: argv}, &r)
	return r, err
}

// Uname returns the guest's uname fields.
func (vm *VM) Uname(ctx context.Context) (control.Uname, error) {
	var u control.Uname
	err := vm.Call(ctx, control.MethodUname, nil, &u)
	return u, err
}

// Configure applies a network configuration in the guest.
func (vm *VM) Configure(ctx context.Context, c control.Configure) error {
	return vm.Call(ctx, control.MethodConfigure, c, nil)
}

// Poweroff asks the agent to power off and waits for QEMU to exit.
func (vm *VM) Poweroff(ctx context.Context) error {
	vm.stopping.Store(true)
	if err := vm.agent.Poweroff(ctx); err != nil {
		return fmt.Errorf("vm %s: %w", vm.opts.Name, err)
	}
	select {
	case <-vm.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vm %s: wait for poweroff: %w", vm.opts.Name, ctx.Err())
	}
}
