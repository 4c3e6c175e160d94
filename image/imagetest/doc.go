// Package imagetest boots the gokrazy image under QEMU and checks it from
// the outside (make image-test): its only code is the test, which runs
// when CHATBOX_IMAGE_TEST=1 and skips otherwise, so make test stays fast.
package imagetest
