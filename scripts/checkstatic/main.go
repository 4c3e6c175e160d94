// Command checkstatic checks that ELF binaries are statically linked (no
// program interpreter, no shared libraries needed) and prints their sizes.
// make cross runs it over the cross-compiled binaries.
package main

import (
	"debug/elf"
	"fmt"
	"os"
)

func main() {
	bad := 0
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			bad++
		}
	}
	if bad > 0 || len(os.Args) < 2 {
		os.Exit(1)
	}
}

func check(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("dynamically linked (has a program interpreter)")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v", libs)
	}
	fmt.Printf("%-40s %-8s %-10s %6.1f MB  static\n", path, f.Machine.String()[3:], f.Class, float64(fi.Size())/(1<<20))
	return nil
}
