// Wrapper module that builds the pinned etcd for kedge's local control plane. etcd's root module
// replaces its sibling modules with local paths, so it cannot be 'go install'ed from the module
// proxy; its server module can be required like any other, and etcdmain is the etcd command.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
