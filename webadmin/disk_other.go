//go:build !linux

package webadmin

// diskFree is not measured outside Linux.
func diskFree(string) (free, total uint64, ok bool) { return 0, 0, false }
