package router

import "strconv"

// hcode is a router error: Heroku's code, description, status and log level.
type hcode struct {
	code, desc, at string
	status         int
}

var (
	h10 = &hcode{"H10", "App crashed", "error", 503}
	h11 = &hcode{"H11", "Backlog too deep", "error", 503}
	h12 = &hcode{"H12", "Request timeout", "error", 503}
	h13 = &hcode{"H13", "Connection closed without response", "error", 503}
	h14 = &hcode{"H14", "No web processes running", "error", 503}
	h15 = &hcode{"H15", "Idle connection", "error", 503}
	h17 = &hcode{"H17", "Poorly formatted HTTP response", "error", 503}
	h18 = &hcode{"H18", "Server Request Interrupted", "error", 503}
	h19 = &hcode{"H19", "Backend connection timeout", "error", 503}
	h20 = &hcode{"H20", "App boot timeout", "error", 503}
	h21 = &hcode{"H21", "Backend connection refused", "error", 503}
	h25 = &hcode{"H25", "HTTP restriction", "error", 502}
	h26 = &hcode{"H26", "Request Error", "error", 400}
	h27 = &hcode{"H27", "Client Request Interrupted", "warning", 499}
	h28 = &hcode{"H28", "Client Connection Idle", "warning", 499}
	h80 = &hcode{"H80", "Maintenance mode", "info", 503}
	h99 = &hcode{"H99", "Platform error", "error", 503}
)

// appendLine formats the exchange's router log line in Heroku's layout.
func (x *exchange) appendLine(b []byte) []byte {
	if x.code != nil {
		b = append(b, "at="...)
		b = append(b, x.code.at...)
		b = append(b, " code="...)
		b = append(b, x.code.code...)
		b = append(b, ` desc="`...)
		b = append(b, x.code.desc...)
		b = append(b, '"')
		if x.cause != "" {
			b = append(b, ` cause="`...)
			b = append(b, x.cause...)
			b = append(b, '"')
		}
		if x.sock != "" {
			b = append(b, " sock="...)
			b = append(b, x.sock...)
		}
		b = append(b, ' ')
	} else {
		b = append(b, "at=info "...)
	}
	b = append(b, "method="...)
	b = append(b, x.method...)
	b = append(b, ` path="`...)
	b = appendEscaped(b, x.path)
	b = append(b, `" host=`...)
	b = append(b, x.host...)
	b = append(b, " request_id="...)
	b = append(b, x.reqID...)
	b = append(b, ` fwd="`...)
	b = appendEscaped(b, x.fwd)
	b = append(b, `" dyno=`...)
	b = append(b, x.dyno...)
	b = append(b, " connect="...)
	if x.connected {
		b = strconv.AppendInt(b, x.connect.Milliseconds(), 10)
		b = append(b, "ms"...)
	}
	b = append(b, " service="...)
	if x.serviced {
		b = strconv.AppendInt(b, x.service.Milliseconds(), 10)
		b = append(b, "ms"...)
	}
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(x.status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, x.bytes, 10)
	b = append(b, " protocol="...)
	if x.secure {
		b = append(b, "https"...)
	} else {
		b = append(b, "http"...)
	}
	return b
}

func appendEscaped(b, s []byte) []byte {
	for _, c := range s {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}
