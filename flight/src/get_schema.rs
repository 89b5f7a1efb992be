//! `GetSchema`: the schema a target's read would produce for the caller, without reading.

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::{FlightDescriptor, SchemaAsIpc, SchemaResult};

use crate::auth::Caller;
use crate::target::Target;
use crate::{FlightContext, FlightError, remote, sql, view};

pub(crate) async fn get_schema(
    context: &FlightContext,
    caller: &Caller,
    descriptor: FlightDescriptor,
) -> Result<SchemaResult, FlightError> {
    let described = match Target::of_descriptor(&descriptor)? {
        Target::Dataset(mut read) => {
            caller.purpose_into(&mut read);
            let (schema, _) = context.gate.schema(&caller.subject, &read, caller.interface()).await?;
            return schema_result(&schema);
        }
        Target::Sql(command) => {
            let schema = sql::schema(context, caller, &command).await?;
            return schema_result(&schema);
        }
        Target::View(id) => view::flight_info(&context.views.get(&caller.reader(), &id)?)?,
        Target::Remote { member, read } => remote::flight_info(context, &caller.subject, member, read, descriptor)?,
    };
    Ok(SchemaResult { schema: described.schema })
}

fn schema_result(schema: &arrow::datatypes::Schema) -> Result<SchemaResult, FlightError> {
    let options = IpcWriteOptions::default();
    let ipc = SchemaAsIpc::new(schema, &options);
    Ok(SchemaResult::try_from(ipc).map_err(arrow_flight::error::FlightError::from)?)
}
