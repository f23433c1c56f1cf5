# Before Snakemake reads the Snakefile's configfile: every config file of the run read by our reader, so a tab
# or a duplicate key stops the run with its file and line, and a layer that turns one method into another kind
# (Snakemake merges the layers key by key) stops it with both files and the key. See advtrain.config_layers.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from advtrain import config_layers  # noqa: E402
from advtrain import sources as res  # noqa: E402
from advtrain.config import ConfigError  # noqa: E402

# The Snakefile's `configfile:`, looked for in the working directory (-d); None when --replace-workflow-config.
BASE_CONFIG = (
    None if workflow.config_settings.replace_workflow_config else "config.yaml"
)
try:
    CONFIG_FILES = config_layers.check(
        BASE_CONFIG, workflow.overwrite_configfiles, workflow.config_settings.config
    )
except ConfigError as e:
    raise WorkflowError(f"Invalid configuration:\n{e}") from None
# Path errors point out a missing relative path that lies beside one of these files.
res.CONFIG_FILES[:] = [Path(f) for f in CONFIG_FILES]
if workflow.is_main_process:
    print(config_layers.loaded(CONFIG_FILES, BASE_CONFIG), file=sys.stderr)
