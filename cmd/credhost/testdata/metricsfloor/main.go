// Command metricsfloor is pluginfloor plus the Prometheus text encoder the
// daemon's /metrics uses (github.com/prometheus/common/expfmt and the
// client_model types it encodes): next to pluginfloor in the same run, it
// shows what the metrics cost every cold `credhost token`, which links
// them whether or not it serves.
package main

import (
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/prometheus/client_model/go"
	_ "github.com/prometheus/common/expfmt"
)

func main() {}
