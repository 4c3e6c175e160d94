package upload

import "strings"

// DeleteFilesFromPrefix deletes every stored file, and forgets every slot,
// of accounts whose name starts with prefix (event mode's guests, when the
// event ends: chat.GuestPrefix), and says how many files it deleted. A
// PUT in progress finishes and its file is then kept until it expires.
func (s *Service) DeleteFilesFromPrefix(prefix string) int {
	if prefix == "" {
		return 0 // every account: never meant
	}
	var gone []*fileMeta
	s.mu.Lock()
	for id, m := range s.files {
		if strings.HasPrefix(m.Account, prefix) {
			gone = append(gone, m)
			delete(s.files, id)
		}
	}
	for id, sl := range s.slots {
		if strings.HasPrefix(sl.account, prefix) && !sl.busy {
			delete(s.slots, id)
		}
	}
	s.mu.Unlock()
	for _, m := range gone {
		s.remove(m.ID)
		s.log.Info("upload deleted: its owner's data went", "id", m.ID, "account", m.Account, "bytes", m.Size)
	}
	return len(gone)
}
