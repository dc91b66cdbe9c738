package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

func (vm *VM) connectQMP() error {
	type result struct {
		mon *qmp.SocketMonitor
		err error
	}
	ch := make(chan result, 1)
	go func() {
		mon, err := qmp.NewSocketMonitor("unix", vm.qmpPath, 5*time.Second)
		if err == nil {
			if err = mon.Connect(); err != nil {
				mon.Disconnect()
			}
		}
		ch <- result{mon, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			select {
			case <-vm.exited:
				return fmt.Errorf("%w during start: %v", ErrExited, vm.exitErr)
			case <-time.After(time.Second):
			}
			return fmt.Errorf("qmp connect: %w", r.err)
		}
		vm.mon = r.mon
		events, err := vm.mon.Events(context.Background())
		if err != nil {
			return fmt.Errorf("qmp events: %w", err)
		}
		go func() {
			// Drained so that QMP commands never block on an unread event.
			for e := range events {
				vm.log.Debug("qmp event", "event", e.Event, "data", e.Data)
			}
		}()
		return nil
	case <-vm.exited:
		return fmt.Errorf("%w during start: %v", ErrExited, vm.exitErr)
	case <-time.After(10 * time.Second):
		return errors.New("qmp connect: timeout")
	}
}

// QMP runs a QMP command and returns its raw response.
func (vm *VM) QMP(ctx context.Context, command string, args any) (json.RawMessage, error) {
	if vm.mon == nil {
		return nil, fmt.Errorf("vm %s: qmp not connected", vm.opts.Name)
	}
	b, err := json.Marshal(qmp.Command{Execute: command, Args: args})
	if err != nil {
		return nil, err
	}
	type result struct {
		out []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		out, err := vm.mon.Run(b)
		ch <- result{out, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("vm %s: qmp %s: %w", vm.opts.Name, command, r.err)
		}
		return r.out, nil
	case <-vm.exited:
		return nil, fmt.Errorf("qmp %s: %w", command, vm.Err())
	case <-ctx.Done():
		return nil, fmt.Errorf("vm %s: qmp %s: %w", vm.opts.Name, command, ctx.Err())
	}
}

// Status returns QEMU's run state ("running", "paused", ...).
func (vm *VM) Status(ctx context.Context) (string, error) {
	out, err := vm.QMP(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var r struct {
		Return struct {
			Status string `json:"status"`
		} `json:"return"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return "", fmt.Errorf("query-status: %w", err)
	}
	return r.Return.Status, nil
}

// SetLink sets the link state of NIC i (its index in the VM's NICs): down
// cuts it as if the cable were pulled, so the guest sees no carrier.
func (vm *VM) SetLink(ctx context.Context, i int, up bool) error {
	if i < 0 || i >= len(vm.opts.NICs) {
		return fmt.Errorf("vm %s: no NIC %d", vm.opts.Name, i)
	}
	_, err := vm.QMP(ctx, "set_link", map[string]any{"name": vm.opts.NICs[i].ID, "up": up})
	return err
}

// Quit ends QEMU through QMP and waits for it to exit.
func (vm *VM) Quit(ctx context.Context) error {
	select {
	case <-vm.exited:
		return nil
	default:
	}
	if _, err := vm.QMP(ctx, "quit", nil); err != nil && !errors.Is(err, ErrExited) {
		return err
	}
	select {
	case <-vm.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vm %s: wait for quit: %w", vm.opts.Name, ctx.Err())
	}
}
