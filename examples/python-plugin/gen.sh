#!/bin/sh
# Generates the Python gRPC stubs this plugin needs, from the credhost
# protocol (sdk/proto/credhost.proto) and the three small protocols every
# go-plugin plugin serves or sends (proto/: health, controller, rich
# errors), into OUTDIR (default: generated/ next to this script, where
# credhost_plugin.py looks for them).
#
#   ./gen.sh [OUTDIR]
#
# PYTHON names the interpreter whose grpc_tools generates them (default
# /usr/bin/python3, Debian's, with python3-grpc-tools): generate with the
# same installation the plugin runs with, so the stubs fit its protobuf
# runtime.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/generated}
python=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"
"$python" -m grpc_tools.protoc \
	-I "$here/../../sdk/proto" -I "$here/proto" \
	--python_out="$out" --grpc_python_out="$out" \
	credhost.proto health.proto grpc_controller.proto rpc_status.proto
