/* placeholder: tool_opts is being written */
typedef int tool__placeholder_tool_opts;
