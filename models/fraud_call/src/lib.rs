//! Model `fraud_call`: telecom fraud calls recognised while the call is in progress. (Being built: see issue tracker.)
