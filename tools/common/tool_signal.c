/* placeholder: tool_signal is being written */
typedef int tool__placeholder_tool_signal;
