// tessera::optim: SGD, Adam, AdamW and the StepLR schedule.
#pragma once
#include "tessera/optim/lr_scheduler.hpp"
#include "tessera/optim/optimizer.hpp"
