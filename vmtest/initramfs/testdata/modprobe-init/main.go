// Command modprobe-init is a minimal /init for the initramfs boot test: it
// loads every module listed in /lib/modules/hoplab.order with finit_module,
// prints one line per module and a final "HOPLAB-BOOT-OK <release>" line on
// the console, and powers the VM off.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"
)

func main() {
	_ = syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	_ = syscall.Mount("proc", "/proc", "proc", 0, "")
	_ = syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		os.Stdout, os.Stderr = c, c
	}
	err := loadAll()
	if err == nil {
		err = checkPresent()
	}
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	rel := make([]byte, 0, len(uts.Release))
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	if err != nil {
		fmt.Printf("HOPLAB-BOOT-FAIL %s: %v\n", rel, err)
	} else {
		fmt.Printf("HOPLAB-BOOT-OK %s\n", rel)
	}
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

func loadAll() error {
	f, err := os.Open("/lib/modules/hoplab.order")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		params := ""
		if name == "bonding" {
			params = "max_bonds=0"
		}
		if err := finitModule("/lib/modules/"+name+".ko", params); err != nil {
			return fmt.Errorf("load %s: %w", name, err)
		}
		fmt.Printf("HOPLAB-MODULE %s\n", name)
	}
	return sc.Err()
}

// checkPresent verifies that every module named in /etc/hoplab-want is now
// in the kernel: loaded or built in with a /sys/module entry, or a driver
// registered on some bus.
func checkPresent() error {
	data, err := os.ReadFile("/etc/hoplab-want")
	if err != nil {
		return nil
	}
	var missing []string
	for _, name := range strings.Fields(string(data)) {
		if _, err := os.Stat("/sys/module/" + name); err == nil {
			continue
		}
		found := false
		for _, n := range []string{name, strings.ReplaceAll(name, "_", "-")} {
			if m, _ := filepath.Glob("/sys/bus/*/drivers/" + n); len(m) > 0 {
				found = true
			}
		}
		if !found {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not in the kernel: %s", strings.Join(missing, " "))
	}
	return nil
}

func finitModule(path, params string) error {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	p, err := syscall.BytePtrFromString(params)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall(sysFinitModule, uintptr(fd), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 && errno != syscall.EEXIST {
		return errno
	}
	return nil
}

// sysFinitModule is finit_module's syscall number on linux/amd64.
const sysFinitModule = 313
