// Every handler of a training run in one include, kept only for lib/cli/commands.cc (it needs FormatDuration, now
// in run/console_format.h) until its include names the header it uses; new code includes the handler it needs.
#pragma once

#include "run/baseline_reporter.h"
#include "run/budget.h"
#include "run/checkpointer.h"
#include "run/config_writer.h"
#include "run/console_format.h"
#include "run/early_stopping.h"
#include "run/epoch_logger.h"
#include "run/handler.h"
#include "run/metrics_writer.h"
#include "run/progress_bar.h"
#include "run/progress_logger.h"
#include "run/report_writer.h"
#include "run/sample_printer.h"
#include "run/standard_handlers.h"
