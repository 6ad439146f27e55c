// Command argolint runs Argo Workflows' own offline linter, i.e. the code
// behind `argo lint --offline`, without the rest of the argo CLI (whose
// embedded UI assets are not part of the Go module, so `go install
// github.com/argoproj/argo-workflows/v4/cmd/argo` cannot build).
//
// It mirrors cmd/argo/commands/lint.go (runLint) and the relevant parts of
// cmd/argo/commands/root.go and cmd/argo/commands/client/conn.go from the
// argo-workflows module pinned in go.mod, with --offline always on:
//
//	argolint [--output pretty|simple] [--no-color] FILE_OR_DIR...
//
// Every FILE_OR_DIR is both linted and handed to the offline client as
// OfflineFiles, so WorkflowTemplates / ClusterWorkflowTemplates referenced by
// the linted manifests resolve when their files are passed too. The exit code
// is 0 when every file lints clean and 1 otherwise (lint.RunLint exits 1
// itself on lint failures).
package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/argoproj/argo-workflows/v4/cmd/argo/commands/common"
	"github.com/argoproj/argo-workflows/v4/cmd/argo/lint"
	"github.com/argoproj/argo-workflows/v4/pkg/apiclient"
	wf "github.com/argoproj/argo-workflows/v4/pkg/apis/workflow"
	cmdutil "github.com/argoproj/argo-workflows/v4/util/cmd"
	"github.com/argoproj/argo-workflows/v4/util/logging"
)

// Same as allKinds in cmd/argo/commands/lint.go.
var allKinds = []string{wf.WorkflowPlural, wf.WorkflowTemplatePlural, wf.CronWorkflowPlural, wf.ClusterWorkflowTemplatePlural}

func newCommand() *cobra.Command {
	var (
		output = common.EnumFlagValue{
			AllowedValues: []string{"pretty", "simple"},
			Value:         "pretty",
		}
	)

	command := &cobra.Command{
		Use:   "argolint FILE_OR_DIR...",
		Short: "validate files or directories of Argo manifests, exactly like `argo lint --offline`",
		Args:  cobra.MinimumNArgs(1),
		// As in cmd/argo/commands/root.go (with the default --loglevel info
		// and --log-format text).
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			ctx, _, err := cmdutil.CmdContextWithLogger(cmd, "info", "text")
			if err != nil {
				logging.InitLogger().WithError(err).WithFatal().Error(ctx, "Failed to create argo pre-run logger")
				os.Exit(1)
			}
			cmd.SilenceUsage = true
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLint(cmd.Context(), args, output.String())
		},
	}
	command.Flags().VarP(&output, "output", "o", "Linting results output format. "+output.Usage())
	command.Flags().BoolVar(&common.NoColor, "no-color", false, "Disable colorized output")
	return command
}

// runLint is cmd/argo/commands/lint.go's runLint with offline=true,
// lintKinds=all and strict=true (the `argo lint` defaults).
func runLint(ctx context.Context, args []string, output string) error {
	const (
		offline = true
		strict  = true
	)
	// client.NewAPIClient(ctx) with client.Offline=true and
	// client.OfflineFiles=args; in offline mode apiclient only uses
	// Offline and OfflineFiles.
	ctx, apiClient, err := apiclient.NewClientFromOptsWithContext(ctx, apiclient.Opts{
		Offline:      offline,
		OfflineFiles: args,
	})
	if err != nil {
		return err
	}

	// --kinds defaults to "all", which runLint expands to allKinds.
	lintKinds := allKinds
	ops := lint.LintOptions{
		Files:            args,
		Strict:           strict,
		DefaultNamespace: "", // client.Namespace(ctx) returns "" when offline
		Printer:          os.Stdout,
	}
	return lint.RunLint(ctx, apiClient, lintKinds, output, offline, ops)
}

func main() {
	command := newCommand()
	command.SetContext(context.Background())
	if err := command.Execute(); err != nil {
		// cobra has already printed "Error: ..." to stderr, as in cmd/argo/main.go.
		os.Exit(1)
	}
}
