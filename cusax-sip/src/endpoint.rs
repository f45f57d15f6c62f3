//! The sans-IO SIP endpoint: transactions + user agent behind one `handle_input` / `poll_output` contract.
