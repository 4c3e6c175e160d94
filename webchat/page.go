package webchat

// pageHTML is the web chat's page: a choice between joining as a guest
// (a nickname) and logging in with an account, then Converse.js in full
// screen. Without the Converse files it says how to build them.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{{.Name}} — chat</title>
<link rel="stylesheet" href="/chat/chatbox.css">
{{- if .Built}}
<link rel="stylesheet" href="{{.Converse}}converse.min.css">
<script type="application/json" id="chatbox-config">{{.Client}}</script>
<script type="module" src="{{.Converse}}converse.min.js"></script>
<script type="module" src="/chat/chatbox.js"></script>
{{- end}}
</head>
<body>
<main id="chatbox-entry" class="chatbox-entry">
<h1>{{.Name}}</h1>
{{- if not .Built}}
<p id="chatbox-missing">The web chat's files are not in this build. Build them with
<code>make webchat-assets</code> (or plain <code>make</code>), which needs npm, then rebuild the binary.
Meanwhile, use an XMPP app (your account is <i>name</i>@{{.Domain}}) or an IRC app.</p>
{{- else}}
{{- if .Guests}}
<form id="guest-form" class="chatbox-card" autocomplete="off">
<h2>Join as a guest</h2>
<label for="nick">Nickname</label>
<input id="nick" name="nick" required maxlength="30" pattern="[^@\/\s]+" autocapitalize="off" spellcheck="false" placeholder="e.g. alex">
<button type="submit" disabled>Join{{range .Rooms}} #{{.}}{{end}}</button>
</form>
{{- end}}
<section class="chatbox-card">
<h2>{{if .Guests}}Or log in{{else}}Log in{{end}}</h2>
<p>With your account on {{.Domain}}.</p>
<button type="button" id="login-button" disabled>Log in with your account</button>
</section>
<noscript><p>The web chat needs JavaScript. Or use an XMPP app or an IRC app.</p></noscript>
{{- end}}
</main>
</body>
</html>
`
