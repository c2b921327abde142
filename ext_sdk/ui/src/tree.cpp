#include "symphony/ui/tree.hpp"
