package xmpp

// XEP-0004 Data Forms: the few helpers the features that use forms
// share (MUC room configuration, room info). Validation of field types
// beyond what each feature needs is left out.

const nsXData = "jabber:x:data"

// xdataValues returns a submitted form's values by field var.
func xdataValues(x *Element) map[string][]string {
	out := map[string][]string{}
	if x == nil {
		return out
	}
	for _, f := range x.Kids() {
		if !f.Is(nsXData, "field") {
			continue
		}
		v := f.Get("var")
		vals := []string{}
		for _, val := range f.Kids() {
			if val.Is(nsXData, "value") {
				vals = append(vals, val.Text())
			}
		}
		out[v] = vals
	}
	return out
}

// xdataForm is a form of type typ ("form", "result", "submit") whose
// FORM_TYPE is formType.
func xdataForm(typ, formType, title string, fields ...*Element) *Element {
	x := El(nsXData, "x", "type", typ)
	if title != "" {
		x.Add(El(nsXData, "title").Add(title))
	}
	if formType != "" {
		x.Add(xdataField("FORM_TYPE", "hidden", "", formType))
	}
	for _, f := range fields {
		x.Add(f)
	}
	return x
}

// xdataField is one field with its values.
func xdataField(name, typ, label string, values ...string) *Element {
	f := El(nsXData, "field", "var", name, "type", typ, "label", label)
	for _, v := range values {
		f.Add(El(nsXData, "value").Add(v))
	}
	if len(values) == 0 {
		f.Add(El(nsXData, "value"))
	}
	return f
}

// xdataBool reads a boolean field ("1"/"true").
func xdataBool(v []string) bool {
	return len(v) > 0 && (v[0] == "1" || v[0] == "true")
}

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
