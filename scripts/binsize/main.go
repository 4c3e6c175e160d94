// Command binsize shows what makes chatbox's binary big: it builds
// cmd/chatbox for a target with symbols kept (the shipped binary strips
// them with -s -w, so this needs its own build), sums symbol sizes
// per Go package (or per module with -module) and prints the largest.
//
//	go run ./scripts/binsize                       linux/arm64, top 25 packages
//	go run ./scripts/binsize -arch mipsle -module   per module, for MIPS (softfloat)
//
// Uninitialised data (BSS) takes no room in the file and is left out.
package main

import (
	"cmp"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	top := flag.Int("n", 25, "how many to print")
	byModule := flag.Bool("module", false, "sum per module rather than per package")
	arch := flag.String("arch", "arm64", "GOARCH to build for (arm is GOARM=7, mipsle is GOMIPS=softfloat)")
	flag.Parse()
	if err := run(*arch, *top, *byModule); err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
}

func run(arch string, top int, byModule bool) error {
	dir, err := os.MkdirTemp("", "binsize-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "chatbox")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/chatbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOARM=7", "GOMIPS=softfloat")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return err
	}
	ef, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer ef.Close()
	syms, err := ef.Symbols()
	if err != nil {
		return fmt.Errorf("symbols of %s: %w", bin, err)
	}
	var mods []string
	if byModule {
		list, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", "./cmd/chatbox").Output()
		if err != nil {
			return fmt.Errorf("go list: %w", err)
		}
		for _, m := range strings.Fields(string(list)) {
			if !slices.Contains(mods, m) {
				mods = append(mods, m)
			}
		}
		// Longest first, so that a nested module wins over its parent.
		slices.SortFunc(mods, func(a, b string) int { return len(b) - len(a) })
	}
	sums := map[string]int64{}
	var total int64
	for _, sym := range syms {
		// Only what the file holds: not BSS (SHT_NOBITS), not undefined.
		if int(sym.Section) <= 0 || int(sym.Section) >= len(ef.Sections) || ef.Sections[sym.Section].Type == elf.SHT_NOBITS || sym.Size == 0 {
			continue
		}
		key := pkgOf(sym.Name)
		if byModule {
			key = moduleOf(key, mods)
		}
		sums[key] += int64(sym.Size)
		total += int64(sym.Size)
	}
	type row struct {
		name string
		size int64
	}
	var rows []row
	for k, v := range sums {
		rows = append(rows, row{k, v})
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.size, a.size) })
	fmt.Printf("linux/%s unstripped %.1f MiB; symbols %.1f MiB in %d groups\n",
		arch, float64(fi.Size())/(1<<20), float64(total)/(1<<20), len(rows))
	fmt.Print("sections:")
	for _, sec := range ef.Sections {
		if sec.Type != elf.SHT_NOBITS && sec.Size >= 256<<10 {
			fmt.Printf(" %s %.1f MiB", sec.Name, float64(sec.Size)/(1<<20))
		}
	}
	fmt.Println()
	for i, r := range rows {
		if i == top {
			break
		}
		fmt.Printf("%8.0f KiB %5.1f%%  %s\n", float64(r.size)/1024, 100*float64(r.size)/float64(total), r.name)
	}
	return nil
}

// pkgOf is the package a symbol belongs to: "runtime.mallocgc" is
// runtime, "github.com/a/b.(*T).M" is github.com/a/b; the linker's own
// data (type:, go:string., ...) is grouped by its prefix.
func pkgOf(sym string) string {
	for _, p := range []string{"type:", "go:", "runtime.pclntab", "runtime.rodata", "runtime.text"} {
		if strings.HasPrefix(sym, p) {
			return "(linker) " + p
		}
	}
	slash := strings.LastIndex(sym, "/")
	if dot := strings.Index(sym[slash+1:], "."); dot >= 0 {
		return sym[:slash+1+dot]
	}
	return sym
}

func moduleOf(pkg string, mods []string) string {
	for _, m := range mods {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return m
		}
	}
	if strings.HasPrefix(pkg, "(linker)") {
		return pkg
	}
	return "(std) Go standard library"
}
