//go:build linux

package webadmin

import "syscall"

// diskFree is the space available to the box and the total size of the
// file system holding dir.
func diskFree(dir string) (free, total uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, true
}
