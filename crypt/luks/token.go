package luks

import "encoding/json"

// jsonRaw keeps a LUKS2 token verbatim.
type jsonRaw = json.RawMessage

// tokenNamesKeyslot reports whether a token lists keyslot id.
func tokenNamesKeyslot(t jsonRaw, id string) bool {
	var tok struct {
		Keyslots []string `json:"keyslots"`
	}
	if json.Unmarshal(t, &tok) != nil {
		return false
	}
	return contains(tok.Keyslots, id)
}
